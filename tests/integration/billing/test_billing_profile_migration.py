"""Migration 0070 on data written before it: a merchant's one billing profile becomes the same profile in
both modes, so nothing an existing merchant prints changes; afterwards the two are separate rows and a write
that names no mode is refused by the database itself."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from paygate_runtime.migrations import load_migrations
from support.database import TestDatabase


async def test_an_existing_profile_is_copied_to_both_modes(clean_db: TestDatabase) -> None:
    schema = f"migration_{uuid.uuid4().hex[:12]}"
    conn = await clean_db.admin()
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET search_path TO {schema}")
        migrations = load_migrations("billing")
        per_mode = next(m for m in migrations if m.version == "0070")
        for migration in migrations:
            if migration.version < "0070":
                await conn.execute(migration.sql)

        await conn.execute(
            """INSERT INTO billing_profiles (merchant_id, seller_name, seller_address_lines, seller_country,
                                             seller_tax_id, invoice_prefix, tax_rate_bps, support_email,
                                             support_url)
               VALUES ('m-old', 'Old GmbH', '{"Hauptstr. 1"}', 'DE', 'DE123456789', 'OLD', 1900,
                       'help@old.example', 'https://old.example/help')"""
        )
        await conn.execute("INSERT INTO billing_profiles (merchant_id) VALUES ('m-defaults')")

        await conn.execute(per_mode.sql)

        rows = await conn.fetch("SELECT * FROM billing_profiles WHERE merchant_id = 'm-old' ORDER BY mode")
        assert [r["mode"] for r in rows] == ["live", "test"]
        for row in rows:
            assert (row["seller_name"], list(row["seller_address_lines"]), row["seller_country"]) == (
                "Old GmbH",
                ["Hauptstr. 1"],
                "DE",
            )
            assert (row["seller_tax_id"], row["invoice_prefix"], row["tax_rate_bps"]) == (
                "DE123456789",
                "OLD",
                1900,
            )
            assert (row["support_email"], row["support_url"]) == (
                "help@old.example",
                "https://old.example/help",
            )
        modes = await conn.fetch("SELECT mode FROM billing_profiles WHERE merchant_id = 'm-defaults'")
        assert sorted(r["mode"] for r in modes) == ["live", "test"]

        # From now on the two worlds are separate rows: changing one leaves the other.
        await conn.execute(
            "UPDATE billing_profiles SET seller_name = 'Sandbox' WHERE merchant_id = 'm-old' AND mode = 'test'"
        )
        live = await conn.fetchval(
            "SELECT seller_name FROM billing_profiles WHERE merchant_id = 'm-old' AND mode = 'live'"
        )
        assert live == "Old GmbH"
        # A write that forgets the mode fails instead of landing in a default world.
        with pytest.raises(asyncpg.NotNullViolationError):
            await conn.execute("INSERT INTO billing_profiles (merchant_id) VALUES ('m-new')")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO billing_profiles (merchant_id, mode) VALUES ('m-new', 'staging')")
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
