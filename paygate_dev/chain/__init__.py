"""The local chain of `paygate up --chain` and the chain tests: the anvil node, the test ERC-20 token (its
compiled artifact in artifacts/), the bootstrap that funds and configures a dev merchant, and `paygate pay`."""
