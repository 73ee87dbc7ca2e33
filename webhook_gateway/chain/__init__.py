"""The gateway's chain side: a local anvil node for dev and tests, the test ERC-20 token, chain-truth
verification of transactions over JSON-RPC, block scanning for the watcher, and the pure deposit ledger."""
