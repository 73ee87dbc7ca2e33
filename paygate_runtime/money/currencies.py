"""ISO 4217 as its maintenance agency publishes it: which codes are currencies a customer can pay in.

The source is SIX Group's "List one: Currency, fund and precious metal codes"
(https://www.six-group.com/dam/download/financial-information/data-center/iso-currrency/lists/list-one.xml),
embedded here as data so that no service depends on a package's copy of it at run time. The table below is
that list as published on 2026-01-01, the first edition without BGN (Bulgaria adopted the euro that day).
We could not download SIX's file from the build machine, so the table was checked entry by entry (code,
number, minor units) against a copy generated from that edition of list-one.xml; tests/unit/money pins the
facts that matter (BGN gone, XCG in place of ANG, ZWG in place of ZWL, ISK/UGX zero-decimal, the
three-decimal dinars). Locale data such as CLDR is NOT a substitute: CLDR gives ISK, UGX and others other
digits than ISO 4217 and keeps withdrawn codes for old documents.

What the table holds, and why:
- `ISO_4217`: every entry of list one that is a currency someone pays in, with its minor units (exponent).
- `NOT_PAYABLE`: the rest of list one, refused on purpose. Fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN,
  UYI, UYW) are settlement and index units that banks book, not currencies a checkout is priced in (CLF and
  UYW even have 4 minor units that no card network carries); units of account (XAD, XDR, XSU, XUA), bond
  market units (XBA..XBD) and precious metals (XAU, XAG, XPD, XPT) have no payment rail at all; XTS is
  reserved for tests and XXX means "no currency". Accepting any of them would only widen what a typo does.
- `WITHDRAWN`: recent codes of list three (historic denominations) with the code that replaced them, so a
  client that still sends one is told what to send instead. Any other code not in list one is simply
  unknown; both are refused.

When SIX publishes an amendment, update `ISO_4217` (and move a withdrawn code to `WITHDRAWN`), then run
tests/unit/money: the session service, billing and the gateway all read this one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class IsoCurrency:
    code: str
    numeric: int
    exponent: int  # "minor units" in ISO 4217: digits after the decimal point


# code, ISO numeric code, minor units: list one of 2026-01-01 without the codes in NOT_PAYABLE.
_LIST_ONE = """
AED 784 2  AFN 971 2  ALL 008 2  AMD 051 2  AOA 973 2  ARS 032 2  AUD 036 2  AWG 533 2  AZN 944 2
BAM 977 2  BBD 052 2  BDT 050 2  BHD 048 3  BIF 108 0  BMD 060 2  BND 096 2  BOB 068 2  BRL 986 2
BSD 044 2  BTN 064 2  BWP 072 2  BYN 933 2  BZD 084 2  CAD 124 2  CDF 976 2  CHF 756 2  CLP 152 0
CNY 156 2  COP 170 2  CRC 188 2  CUP 192 2  CVE 132 2  CZK 203 2  DJF 262 0  DKK 208 2  DOP 214 2
DZD 012 2  EGP 818 2  ERN 232 2  ETB 230 2  EUR 978 2  FJD 242 2  FKP 238 2  GBP 826 2  GEL 981 2
GHS 936 2  GIP 292 2  GMD 270 2  GNF 324 0  GTQ 320 2  GYD 328 2  HKD 344 2  HNL 340 2  HTG 332 2
HUF 348 2  IDR 360 2  ILS 376 2  INR 356 2  IQD 368 3  IRR 364 2  ISK 352 0  JMD 388 2  JOD 400 3
JPY 392 0  KES 404 2  KGS 417 2  KHR 116 2  KMF 174 0  KPW 408 2  KRW 410 0  KWD 414 3  KYD 136 2
KZT 398 2  LAK 418 2  LBP 422 2  LKR 144 2  LRD 430 2  LSL 426 2  LYD 434 3  MAD 504 2  MDL 498 2
MGA 969 2  MKD 807 2  MMK 104 2  MNT 496 2  MOP 446 2  MRU 929 2  MUR 480 2  MVR 462 2  MWK 454 2
MXN 484 2  MYR 458 2  MZN 943 2  NAD 516 2  NGN 566 2  NIO 558 2  NOK 578 2  NPR 524 2  NZD 554 2
OMR 512 3  PAB 590 2  PEN 604 2  PGK 598 2  PHP 608 2  PKR 586 2  PLN 985 2  PYG 600 0  QAR 634 2
RON 946 2  RSD 941 2  RUB 643 2  RWF 646 0  SAR 682 2  SBD 090 2  SCR 690 2  SDG 938 2  SEK 752 2
SGD 702 2  SHP 654 2  SLE 925 2  SOS 706 2  SRD 968 2  SSP 728 2  STN 930 2  SVC 222 2  SYP 760 2
SZL 748 2  THB 764 2  TJS 972 2  TMT 934 2  TND 788 3  TOP 776 2  TRY 949 2  TTD 780 2  TWD 901 2
TZS 834 2  UAH 980 2  UGX 800 0  USD 840 2  UYU 858 2  UZS 860 2  VED 926 2  VES 928 2  VND 704 0
VUV 548 0  WST 882 2  XAF 950 0  XCD 951 2  XCG 532 2  XOF 952 0  XPF 953 0  YER 886 2  ZAR 710 2
ZMW 967 2  ZWG 924 2
"""

# The other entries of list one, and why each group is refused (see the module docstring).
NOT_PAYABLE: Final[Mapping[str, str]] = MappingProxyType(
    {
        **dict.fromkeys(("BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"), "a fund code"),
        **dict.fromkeys(("XAD", "XDR", "XSU", "XUA"), "a unit of account"),
        **dict.fromkeys(("XBA", "XBB", "XBC", "XBD"), "a bond market unit"),
        **dict.fromkeys(("XAU", "XAG", "XPD", "XPT"), "a precious metal"),
        "XTS": "reserved for testing",
        "XXX": "the code for no currency",
    }
)

# Withdrawn codes (ISO 4217 list three) still seen in the wild, with their successor.
WITHDRAWN: Final[Mapping[str, str]] = MappingProxyType(
    {
        "BGN": "EUR",  # withdrawn on 2026-01-01: Bulgaria adopted the euro
        "HRK": "EUR",
        "LTL": "EUR",
        "LVL": "EUR",
        "EEK": "EUR",
        "ANG": "XCG",
        "CUC": "CUP",
        "SLL": "SLE",
        "ZWL": "ZWG",
        "VEF": "VES",
        "MRO": "MRU",
        "STD": "STN",
        "BYR": "BYN",
    }
)


def _parse(text: str) -> dict[str, IsoCurrency]:
    fields = text.split()
    table: dict[str, IsoCurrency] = {}
    for index in range(0, len(fields), 3):
        code, numeric, exponent = fields[index : index + 3]
        table[code] = IsoCurrency(code, int(numeric), int(exponent))
    return table


ISO_4217: Final[Mapping[str, IsoCurrency]] = MappingProxyType(_parse(_LIST_ONE))

# Every three-letter code ISO has given a meaning that a token symbol must not borrow.
ISO_RESERVED: Final[frozenset[str]] = frozenset(ISO_4217) | frozenset(NOT_PAYABLE) | frozenset(WITHDRAWN)


def iso_currency(code: str) -> IsoCurrency | None:
    """The ISO 4217 currency a customer can pay in with this (upper-case) code, else None."""
    return ISO_4217.get(code)


def iso_exponent(code: str) -> int:
    """ISO 4217 minor units of a payable currency (any case); LookupError for anything else."""
    found = ISO_4217.get(code.upper()) if isinstance(code, str) else None
    if found is None:
        raise LookupError(f"{code!r} is not a current ISO 4217 currency")
    return found.exponent


# Most currencies have two minor digits; used only for a code no session can be priced in (see below).
DEFAULT_REPORTED_EXPONENT: Final = 2


def reported_exponent(code: str) -> int:
    """The exponent of an amount a provider reports in ISO minor units of `code` (any case).

    ISO 4217's for a payable currency. For any other code DEFAULT_REPORTED_EXPONENT: no session is priced
    in it, so the event can only be a currency mismatch, which the session service quarantines for the
    merchant to see; refusing it here would drop the money from view instead.
    """
    found = ISO_4217.get(code.upper()) if isinstance(code, str) else None
    return found.exponent if found is not None else DEFAULT_REPORTED_EXPONENT


def why_not_payable(code: str) -> str | None:
    """A short reason for an ISO-reserved code that is not a payable currency (None otherwise)."""
    if code in NOT_PAYABLE:
        return f"{code} is {NOT_PAYABLE[code]} in ISO 4217, not a currency a customer pays in"
    if code in WITHDRAWN:
        return f"{code} was withdrawn from ISO 4217; use {WITHDRAWN[code]}"
    return None
