"""Developer tools, outside the product: `paygate up` (the whole system on one machine, with an embedded
PostgreSQL, an SMTP sink, the One.com test double and an optional local chain), the dev commands `demo`,
`trigger`, `events` and `pay`, and the fixtures they and the tests share (signed provider events, the anvil
node, the test ERC-20 token).

The product packages never import this package (tests/unit/runtime/test_import_contracts.py); the `paygate`
command finds these commands through the `paygate.commands` entry point group (paygate_dev.commands), and
the container image does not contain it.
"""
