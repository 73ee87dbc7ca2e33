"""ISO 3166-1 alpha-2: the country codes paygate accepts wherever a country enters (a session's buyer, the
checkout page's buyer form, a billing profile's seller).

Two letters are not enough: "UK" (a common typo for GB), "EU" or "ZZ" would be printed on the invoice and
written into its Factur-X XML, whose country codes EN 16931 takes from this list (BR-CL-14), and a buyer's
accounting software may reject such an e-invoice. Only new input is checked against the list: a code stored
before the check keeps rendering and invoicing as it did.
"""

from __future__ import annotations

from typing import Final

# The 249 officially assigned ISO 3166-1 alpha-2 codes, as in the ISO 3166 Maintenance Agency's list and
# tzdata's iso3166.tab ("current as of ISO/TC 46 N1108 (2023-04-05)"); unchanged since South Sudan (SS) was
# added in 2011. Copied as data (no library in the runtime carries it; pycountry is not a dependency).
# Left out on purpose: user-assigned codes (AA, QM-QZ, XA-XZ, ZZ), so XK (Kosovo, a user-assigned code the
# European Commission uses, not an ISO assignment); exceptionally reserved codes such as UK and EU; and
# transitionally reserved ones of former countries (AN, CS, YU, ...).
# fmt: off
ASSIGNED_ALPHA_2: Final[frozenset[str]] = frozenset({
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ",
    "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ",
    "DE", "DJ", "DK", "DM", "DO", "DZ",
    "EC", "EE", "EG", "EH", "ER", "ES", "ET",
    "FI", "FJ", "FK", "FM", "FO", "FR",
    "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY",
    "HK", "HM", "HN", "HR", "HT", "HU",
    "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT",
    "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ",
    "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
    "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ",
    "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM",
    "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY",
    "QA",
    "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ",
    "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ",
    "UA", "UG", "UM", "US", "UY", "UZ",
    "VA", "VC", "VE", "VG", "VI", "VN", "VU",
    "WF", "WS",
    "YE", "YT",
    "ZA", "ZM", "ZW",
})
# fmt: on


def is_iso_country(code: str) -> bool:
    """Whether `code` is an assigned ISO 3166-1 alpha-2 code, exactly as given (upper case): callers that
    accept lower case upper-case it first, as each did before this list existed."""
    return code in ASSIGNED_ALPHA_2
