"""asyncpg access to billing profiles, one per (merchant, mode): every read and write names the mode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from billing_service.domain.invoices import Address, Mode, Party, parse_mode
from billing_service.domain.profiles import BillingProfile, default_profile


async def get_profile(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str, mode: Mode
) -> BillingProfile:
    """The merchant's profile of this mode, or the defaults when it never set one there. `mode` has no
    default on purpose: a caller that forgets it must fail, not print the other world's seller."""
    mode = parse_mode(mode)
    row = await conn.fetchrow(
        "SELECT * FROM billing_profiles WHERE merchant_id = $1 AND mode = $2", merchant_id, str(mode)
    )
    if row is None:
        return default_profile(merchant_id, mode)
    return profile_from_json(dict(row))


def profile_from_json(row: Mapping[str, Any]) -> BillingProfile:
    """A profile from a billing_profiles row, as a record or as its to_jsonb() object."""
    return BillingProfile(
        merchant_id=row["merchant_id"],
        mode=parse_mode(row["mode"]),
        seller=Party(
            name=row["seller_name"],
            email=row["seller_email"],
            address=Address(lines=tuple(row["seller_address_lines"]), country=row["seller_country"]),
            tax_id=row["seller_tax_id"],
        ),
        invoice_prefix=row["invoice_prefix"],
        tax_rate_bps=row["tax_rate_bps"],
        reset_numbering_yearly=row["reset_numbering_yearly"],
        support_email=row["support_email"],
        support_url=row.get("support_url") or "",
    )


async def put_profile(conn: asyncpg.Connection, profile: BillingProfile, *, actor: str = "") -> None:
    """Replace the profile of its mode (insert or overwrite); the caller validated it.

    A trigger (migration 0120) keeps the written profile as a version and audits it as `billing_profile_updated`
    in the same statement; `actor` (who asked, "" for nobody) reaches it as the transaction-local setting
    `paygate.actor`, so it is never left behind for a later write. Hence one transaction for both statements.
    """
    async with conn.transaction():
        await conn.execute("SELECT set_config('paygate.actor', $1, true)", actor)
        await _upsert(conn, profile)


async def _upsert(conn: asyncpg.Connection, profile: BillingProfile) -> None:
    seller = profile.seller
    await conn.execute(
        """INSERT INTO billing_profiles (merchant_id, seller_name, seller_email, seller_address_lines,
                                         seller_country, seller_tax_id, invoice_prefix, tax_rate_bps,
                                         reset_numbering_yearly, support_email, support_url, mode, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
           ON CONFLICT (merchant_id, mode) DO UPDATE SET
               seller_name = EXCLUDED.seller_name, seller_email = EXCLUDED.seller_email,
               seller_address_lines = EXCLUDED.seller_address_lines, seller_country = EXCLUDED.seller_country,
               seller_tax_id = EXCLUDED.seller_tax_id, invoice_prefix = EXCLUDED.invoice_prefix,
               tax_rate_bps = EXCLUDED.tax_rate_bps, reset_numbering_yearly = EXCLUDED.reset_numbering_yearly,
               support_email = EXCLUDED.support_email, support_url = EXCLUDED.support_url,
               updated_at = now()""",
        profile.merchant_id,
        seller.name,
        seller.email,
        list(seller.address.lines),
        seller.address.country,
        seller.tax_id,
        profile.invoice_prefix,
        profile.tax_rate_bps,
        profile.reset_numbering_yearly,
        profile.support_email,
        profile.support_url,
        str(parse_mode(profile.mode)),
    )
