"""Which Ethereum node serves which mode (contract §6a), read the same way by the gateway and the session service.

Each mode has its own chain: `PAYGATE_CHAIN_RPC_URL_TEST` + `PAYGATE_CHAIN_ID_TEST` and
`PAYGATE_CHAIN_RPC_URL_LIVE` + `PAYGATE_CHAIN_ID_LIVE`. The unsuffixed `PAYGATE_CHAIN_RPC_URL` and
`PAYGATE_CHAIN_ID` mean test, as the other per-mode variables do. A URL and its chain id come as a pair: one
without the other stops start-up (exit 2) with a line naming the missing variable, because a node whose
chain id is guessed could settle money of one chain against another. A live chain must be one of
`PAYGATE_CHAIN_MAINNET_IDS` (default `1`), so live sessions can only ever settle on real money.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paygate_runtime.config import ConfigError, Env

MODES = ("test", "live")
DEFAULT_MAINNET_IDS = frozenset({1})


@dataclass(frozen=True, slots=True)
class ModeChain:
    mode: str
    chain_id: int
    rpc_url: str = field(repr=False)  # node URLs often carry a provider's API key


@dataclass(frozen=True, slots=True)
class ChainNodes:
    chains: dict[str, ModeChain] = field(default_factory=dict)
    mainnet_ids: frozenset[int] = DEFAULT_MAINNET_IDS

    def for_mode(self, mode: str | None) -> ModeChain | None:
        return self.chains.get(mode or "test")

    def for_chain_id(self, chain_id: int) -> ModeChain | None:
        for chain in self.chains.values():
            if chain.chain_id == chain_id:
                return chain
        return None


def _pick(env: Env, base: str, mode: str) -> tuple[str | None, str]:
    """The value of `<base>_<MODE>`, or for test also the unsuffixed `<base>`; and the name it came from."""
    suffixed = f"{base}_{mode.upper()}"
    value = env.optional(suffixed)
    if mode != "test":
        return value, suffixed
    plain = env.optional(base)
    if value is not None and plain is not None and value != plain:
        raise ConfigError(suffixed, f"differs from {base}; set one of them (the unsuffixed one means test)")
    if value is not None:
        return value, suffixed
    return plain, base


def _chain_id(raw: str, name: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(name, "must be an integer chain id") from None
    if not 0 < value < 2**53:
        raise ConfigError(name, "must be a positive chain id")
    return value


def _mainnet_ids(env: Env) -> frozenset[int]:
    raw = env.optional("PAYGATE_CHAIN_MAINNET_IDS")
    if raw is None:
        return DEFAULT_MAINNET_IDS
    ids = frozenset(_chain_id(part, "PAYGATE_CHAIN_MAINNET_IDS") for part in raw.split(",") if part.strip())
    if not ids:
        raise ConfigError("PAYGATE_CHAIN_MAINNET_IDS", "must list at least one chain id")
    return ids


def load_chain_nodes(env: Env) -> ChainNodes:
    """Parse the per-mode chain variables; raises ConfigError naming the first wrong or missing variable."""
    mainnet_ids = _mainnet_ids(env)
    chains: dict[str, ModeChain] = {}
    for mode in MODES:
        url, url_name = _pick(env, "PAYGATE_CHAIN_RPC_URL", mode)
        raw_id, id_name = _pick(env, "PAYGATE_CHAIN_ID", mode)
        suffix = f"_{mode.upper()}"
        if url is not None and raw_id is None:
            wanted = (
                "PAYGATE_CHAIN_ID" if url_name == "PAYGATE_CHAIN_RPC_URL" else f"PAYGATE_CHAIN_ID{suffix}"
            )
            raise ConfigError(wanted, f"is required when {url_name} is set (the {mode} chain's id)")
        if raw_id is not None and url is None:
            wanted = (
                "PAYGATE_CHAIN_RPC_URL" if id_name == "PAYGATE_CHAIN_ID" else f"PAYGATE_CHAIN_RPC_URL{suffix}"
            )
            raise ConfigError(wanted, f"is required when {id_name} is set (the {mode} chain's node)")
        if url is None or raw_id is None:
            continue
        if not url.startswith(("http://", "https://")):
            raise ConfigError(url_name, "must be an http(s) JSON-RPC URL")
        chain_id = _chain_id(raw_id, id_name)
        if mode == "live" and chain_id not in mainnet_ids:
            allowed = ", ".join(str(c) for c in sorted(mainnet_ids))
            raise ConfigError(
                id_name,
                f"must be a mainnet chain id ({allowed}; see PAYGATE_CHAIN_MAINNET_IDS), not {chain_id}",
            )
        chains[mode] = ModeChain(mode, chain_id, url)
    if "test" in chains and "live" in chains and chains["test"].chain_id == chains["live"].chain_id:
        raise ConfigError(
            "PAYGATE_CHAIN_ID_TEST", "must differ from PAYGATE_CHAIN_ID_LIVE (test and live never mix)"
        )
    return ChainNodes(chains, mainnet_ids)
