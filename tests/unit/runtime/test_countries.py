"""The ISO 3166-1 alpha-2 list every country check uses (paygate_runtime.countries)."""

from __future__ import annotations

import pytest

from paygate_runtime.countries import ASSIGNED_ALPHA_2, is_iso_country


def test_the_list_holds_exactly_the_249_assigned_codes() -> None:
    assert len(ASSIGNED_ALPHA_2) == 249
    assert all(len(code) == 2 and code.isascii() and code.isupper() for code in ASSIGNED_ALPHA_2)


@pytest.mark.parametrize("code", ["GB", "DE", "FR", "US", "CH", "AX", "SS", "CW", "SX", "BQ", "TW", "PS"])
def test_assigned_codes_are_accepted(code: str) -> None:
    assert is_iso_country(code)


@pytest.mark.parametrize(
    "code",
    [
        "UK",  # exceptionally reserved; the United Kingdom is GB
        "EU",  # exceptionally reserved for the European Union, not a country
        "ZZ",  # user-assigned
        "XK",  # Kosovo: user-assigned, not an ISO assignment
        "AA",
        "QZ",
        "YU",  # transitionally reserved (Yugoslavia)
        "AN",  # transitionally reserved (Netherlands Antilles)
        "gb",  # exactly as given: callers upper-case first where they accept lower case
        "",
        "GBR",
    ],
)
def test_other_codes_are_not(code: str) -> None:
    assert not is_iso_country(code)
