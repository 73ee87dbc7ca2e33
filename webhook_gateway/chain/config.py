"""The gateway's chain configuration beyond the per-mode nodes (paygate_runtime.chain_config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from paygate_runtime.chain_config import ChainNodes, load_chain_nodes
from paygate_runtime.config import Env
from webhook_gateway.chain.web3_service import INTERNAL_TRANSFER_MODES


@dataclass(frozen=True)
class GatewayChainConfig:
    nodes: ChainNodes = field(default_factory=ChainNodes)
    # "auto", "traces", "balance" or "off": how contract-internal ETH transfers are found (README).
    internal_transfers: str = "auto"
    creation_skew_s: int = 12
    error_backoff_base_s: float = 5.0
    error_backoff_cap_s: float = 300.0


def load_gateway_chain_config(env: Env) -> GatewayChainConfig:
    base = env.millis("PAYGATE_CHAIN_ERROR_BACKOFF_MS", 5_000, minimum=10, maximum=3_600_000)
    return GatewayChainConfig(
        nodes=load_chain_nodes(env),
        internal_transfers=env.choice(
            "PAYGATE_CHAIN_INTERNAL_TRANSFERS", "auto", set(INTERNAL_TRANSFER_MODES)
        ),
        creation_skew_s=env.int("PAYGATE_CHAIN_CREATION_SKEW_S", 12, minimum=0, maximum=3600),
        error_backoff_base_s=base,
        error_backoff_cap_s=max(
            base, env.millis("PAYGATE_CHAIN_ERROR_BACKOFF_MAX_MS", 300_000, minimum=10, maximum=86_400_000)
        ),
    )
