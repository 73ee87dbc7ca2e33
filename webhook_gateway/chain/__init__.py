"""The gateway's chain side: chain-truth verification of transactions over JSON-RPC, block scanning for the
watcher, settlement, and the pure deposit ledger. The local anvil node, the test ERC-20 token and the
`paygate up --chain` bootstrap are dev tools, in paygate_dev.chain."""
