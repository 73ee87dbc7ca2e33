"""Reading and replacing a merchant's payment settings (default currency, on-chain settings)."""

from __future__ import annotations

import asyncpg
from eth_utils import to_checksum_address

from session_service.adapters import session_repository as repo
from session_service.domain.deposit_addresses import validate_xpub
from session_service.domain.payment_settings import OnchainSettings, PaymentSettings, validate_settings
from session_service.service_layer.sessions import parse_uuid


async def get_settings(pool: asyncpg.Pool, merchant_id: str) -> PaymentSettings:
    merchant = parse_uuid(merchant_id, "merchant_id")
    async with pool.acquire() as conn:
        return repo.settings_from_row(str(merchant), await repo.fetch_settings(conn, merchant))


async def update_settings(
    pool: asyncpg.Pool, merchant_id: str, default_currency: str, onchain: OnchainSettings | None
) -> PaymentSettings:
    merchant = parse_uuid(merchant_id, "merchant_id")
    settings = validate_settings(
        str(merchant), default_currency, onchain, checksum=to_checksum_address, validate_xpub=validate_xpub
    )
    async with pool.acquire() as conn, conn.transaction():
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
            },
        )
    return repo.settings_from_row(str(merchant), row)
