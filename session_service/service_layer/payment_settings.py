"""Reading and replacing a merchant's payment settings (default currency, on-chain settings).

On-chain settings are checked against the chain before they are stored, when the session service has a
node for the settings' chain (the same PAYGATE_CHAIN_* variables as the gateway):
- every accepted ERC-20's `decimals()` and `symbol()` must match what the merchant configured;
- a NEW xpub's first deposit addresses must hold no funds and have no history (`xpub_in_use_on_chain`),
  unless the merchant confirms it (`allow_used_xpub`): money already there would look like a payment.
An xpub belongs to one merchant (`xpub_in_use`): two merchants would share deposit addresses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import asyncpg
from eth_utils import to_checksum_address

from paygate_runtime.errors import AlreadyExists, FailedPrecondition
from session_service.adapters import chain_repository as chain_repo
from session_service.adapters import session_repository as repo
from session_service.adapters.chain_probe import ChainProbe
from session_service.domain.deposit_addresses import first_addresses, validate_xpub
from session_service.domain.payment_settings import (
    OnchainSettings,
    PaymentSettings,
    check_token_metadata,
    validate_settings,
)
from session_service.service_layer.sessions import parse_uuid

log = logging.getLogger(__name__)


async def get_settings(pool: asyncpg.Pool, merchant_id: str) -> PaymentSettings:
    merchant = parse_uuid(merchant_id, "merchant_id")
    async with pool.acquire() as conn:
        return repo.settings_from_row(str(merchant), await repo.fetch_settings(conn, merchant))


async def update_settings(
    pool: asyncpg.Pool,
    merchant_id: str,
    default_currency: str,
    onchain: OnchainSettings | None,
    *,
    probes: Mapping[int, ChainProbe] | None = None,
    allow_used_xpub: bool = False,
) -> PaymentSettings:
    merchant = parse_uuid(merchant_id, "merchant_id")
    settings = validate_settings(
        str(merchant), default_currency, onchain, checksum=to_checksum_address, validate_xpub=validate_xpub
    )
    async with pool.acquire() as conn:
        current = repo.settings_from_row(str(merchant), await repo.fetch_settings(conn, merchant))
    chain_checks = "none"
    if settings.onchain is not None:
        probe = (probes or {}).get(settings.onchain.chain_id)
        if probe is None:
            # Nothing to ask: say so in the audit entry rather than pretend the checks ran.
            chain_checks = f"skipped: no node configured for chain {settings.onchain.chain_id}"
            log.warning("on-chain settings stored without chain checks", extra={"merchant_id": str(merchant)})
        else:
            new_xpub = current.onchain is None or current.onchain.xpub != settings.onchain.xpub
            await _check_on_chain(probe, settings.onchain, check_xpub=new_xpub and not allow_used_xpub)
            chain_checks = "tokens" + (", xpub" if new_xpub and not allow_used_xpub else "")
            if new_xpub and allow_used_xpub:
                chain_checks += "; used xpub confirmed by the merchant"
    async with pool.acquire() as conn, conn.transaction():
        if settings.onchain is not None:
            await chain_repo.lock_xpub(conn, settings.onchain.xpub)
            if await chain_repo.other_xpub_owner(conn, settings.onchain.xpub, merchant) is not None:
                raise AlreadyExists(
                    "xpub_in_use",
                    "this xpub is configured by another merchant; an xpub belongs to one merchant",
                    field="xpub",
                )
        row = await repo.save_settings(conn, settings)
        await repo.write_audit(
            conn,
            None,
            merchant,
            f"merchant:{merchant}",
            "payment_settings_updated",
            {
                "default_currency": settings.default_currency,
                "chain_id": settings.onchain.chain_id if settings.onchain else None,
                "tokens": [t.symbol for t in settings.onchain.tokens] if settings.onchain else [],
                "chain_checks": chain_checks,
            },
        )
    return repo.settings_from_row(str(merchant), row)


async def _check_on_chain(probe: ChainProbe, onchain: OnchainSettings, *, check_xpub: bool) -> None:
    for token in onchain.tokens:
        symbol, decimals = await probe.token_metadata(token.address)
        check_token_metadata(token, symbol, decimals)
    if not check_xpub:
        return
    used = await probe.used_addresses(
        first_addresses(onchain.xpub), [(t.address, t.symbol) for t in onchain.tokens]
    )
    if used:
        listed = ", ".join(f"{u.address} ({u.what})" for u in used)
        raise FailedPrecondition(
            "xpub_in_use_on_chain",
            f"the xpub's first deposit addresses already hold funds or history: {listed}. Use a dedicated "
            "account (for example m/44'/60'/1000'), or confirm with allow_used_xpub",
            field="xpub",
        )
