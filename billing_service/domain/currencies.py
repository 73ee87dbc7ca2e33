"""Which currencies billing invoices in, and the exponent each one must carry.

The session service owns the amount and sends its exponent with it; billing still refuses a code it cannot
stand behind, because an invoice in "EUX" or "EUR with 3 decimals" would be printed and summed wrongly
forever. The rule:
- a three-letter code must be an ISO 4217 currency we know (or ETH, or a well-known token symbol), and a
  known fiat code must come with its ISO exponent;
- a longer code (USDC, USDT, PYUSD, ...) is an ERC-20 token whose decimals depend on the contract, so the
  caller's exponent is taken as given (0..18).
"""

from __future__ import annotations

from collections.abc import Mapping

from paygate_runtime.errors import InvalidArgument

from .invoices import validate_currency, validate_exponent

_ZERO_DECIMAL = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMAL = "BHD IQD JOD KWD LYD OMR TND"
_TWO_DECIMAL = (
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF "
    "CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG "
    "HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU "
    "MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR "
    "SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VED "
    "VES WST XCD XCG YER ZAR ZMW ZWG"
)

FIAT_EXPONENTS: Mapping[str, int] = {
    code: exponent
    for codes, exponent in ((_ZERO_DECIMAL, 0), (_TWO_DECIMAL, 2), (_THREE_DECIMAL, 3))
    for code in codes.split()
}
# Three-letter crypto symbols that are not ISO codes. ETH's exponent is fixed by the chain; DAI's by its
# contract (18 on every chain it is deployed to).
CRYPTO_EXPONENTS: Mapping[str, int] = {"ETH": 18, "DAI": 18}
_TOKEN_MIN_LENGTH = 4


def validate_money_unit(currency: object, exponent: object) -> tuple[str, int]:
    """Return (currency, exponent) or refuse with `invalid_currency` / `unknown_currency` / `invalid_exponent`."""
    code = validate_currency(currency)
    digits = validate_exponent(exponent)
    expected = FIAT_EXPONENTS.get(code, CRYPTO_EXPONENTS.get(code))
    if expected is None and len(code) < _TOKEN_MIN_LENGTH:
        raise InvalidArgument(
            "unknown_currency", f"currency {code} is not a known currency", field="currency"
        )
    if expected is not None and digits != expected:
        raise InvalidArgument(
            "invalid_exponent", f"{code} has {expected} decimal digits, not {digits}", field="exponent"
        )
    return code, digits
