"""Optional parts of `paygate up` register here: the SMTP sink and the local chain node.

A startup hook runs after the database and before the services (it may add environment for them in
`stack.plan.extras["env"]`); a post-start hook runs once the services are healthy and returns facts for
stack.json.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

STARTUP_HOOKS: list[Callable[[Any], Awaitable[None]]] = []
POST_START_HOOKS: list[Callable[[Any], Awaitable[dict[str, Any] | None]]] = []


def _register_smtp_sink() -> None:
    from paygate_dev.smtp_sink import start_smtp_sink

    STARTUP_HOOKS.append(start_smtp_sink)


_register_smtp_sink()


async def _start_local_chain(stack: Any) -> None:
    # Imported on use: web3 is heavy and only `up --chain` needs it.
    from paygate_dev.chain.chain_up import start_local_chain

    await start_local_chain(stack)


async def _configure_chain_merchant(stack: Any) -> dict[str, Any] | None:
    from paygate_dev.chain.chain_up import configure_chain_merchant

    return await configure_chain_merchant(stack)


STARTUP_HOOKS.append(_start_local_chain)
POST_START_HOOKS.append(_configure_chain_merchant)


async def _start_onecom_double(stack: Any) -> None:
    # The local One.com test double (contract §11): dev tooling, imported on use.
    from paygate_dev.devtools.onecom_double import start_for_stack

    await start_for_stack(stack)


async def _onecom_facts(stack: Any) -> dict[str, Any] | None:
    from paygate_dev.devtools.onecom_double import stack_facts

    return await stack_facts(stack)


STARTUP_HOOKS.append(_start_onecom_double)
POST_START_HOOKS.append(_onecom_facts)
