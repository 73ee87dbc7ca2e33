from __future__ import annotations

import hashlib
import math
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys_service.domain import api_keys
from keys_service.domain.api_keys import (
    BASE58_ALPHABET,
    KeyKind,
    KeyMode,
    b58encode,
    b58encode_fixed,
    display_hint,
    generate_customer_key,
    generate_merchant_secret_key,
    hash_key,
    hashes_equal,
    key_prefix_of,
    parse_customer_key,
    parse_merchant_key,
    parse_presented_key,
    validate_key_prefix,
)
from paygate_runtime.errors import InvalidArgument

B58 = "[1-9A-HJ-NP-Za-km-z]"
CUSTOMER_KEY = re.compile(rf"acme_(test|live)_{B58}{{33}}")
MERCHANT_KEY = re.compile(rf"sk_(test|live)_{B58}{{33}}")


def b58decode(text: str) -> bytes:
    # Independent reference decoder to check the encoder against.
    number = 0
    for char in text:
        number = number * 58 + BASE58_ALPHABET.index(char)
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


# --- base58 ---------------------------------------------------------------------------------------


def test_b58_known_vectors() -> None:
    # Vectors from the Bitcoin base58 test suite.
    assert b58encode(b"") == ""
    assert b58encode(b"\x00") == "1"
    assert b58encode(b"\x00\x00\x00") == "111"
    assert b58encode(b"hello world") == "StV1DL6CwTryKyV"
    assert b58encode(bytes.fromhex("00eb15231dfceb60925886b67d065299925915aeb172c06647")) == (
        "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"
    )
    assert b58encode(bytes.fromhex("516b6fcd0f")) == "ABnLTmg"


@given(st.binary(max_size=40))
def test_b58_roundtrips(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


@given(st.binary(min_size=1, max_size=32))
def test_b58_fixed_width_encodes_the_same_number(data: bytes) -> None:
    encoded = b58encode_fixed(data)
    assert len(encoded) == math.ceil(len(data) * 8 / math.log2(58))
    assert int.from_bytes(b58decode(encoded), "big") == int.from_bytes(data, "big")


def test_b58_fixed_width_pads_small_and_fills_max_values() -> None:
    assert b58encode_fixed(b"\x00" * 24) == "1" * 33
    assert len(b58encode_fixed(b"\xff" * 24)) == 33
    assert len(b58encode_fixed(b"\xff" * 16)) == 22


# --- generation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["test", "live"])
def test_customer_key_format_and_stored_forms(mode: str) -> None:
    key = generate_customer_key("acme", mode)
    assert CUSTOMER_KEY.fullmatch(key.secret), key.secret
    assert key.secret.startswith(f"acme_{mode}_")
    assert key.prefix == f"acme_{mode}_"
    assert key.mode is KeyMode(mode)
    assert key.key_hash == hashlib.sha256(key.secret.encode()).digest()
    assert len(key.key_hash) == 32
    # The hint shows the visible prefix and 4+4 random chars, never the whole random part.
    random_part = key.secret.removeprefix(key.prefix)
    assert key.hint == f"acme_{mode}_{random_part[:4]}…{random_part[-4:]}"
    assert random_part not in key.hint


def test_customer_key_has_at_least_128_random_bits_beyond_the_hint() -> None:
    assert api_keys.CUSTOMER_KEY_RANDOM_BYTES * 8 >= 128
    random_chars = len(generate_customer_key("acme", "test").secret) - len("acme_test_")
    # Bits of the random part that the public hint does not reveal.
    hidden_bits = api_keys.CUSTOMER_KEY_RANDOM_BYTES * 8 - 2 * api_keys.HINT_CHARS * math.log2(58)
    assert random_chars >= 22
    assert hidden_bits >= 128


@pytest.mark.parametrize("mode", ["test", "live"])
def test_merchant_key_format(mode: str) -> None:
    key = generate_merchant_secret_key(mode)
    assert MERCHANT_KEY.fullmatch(key.secret)
    assert key.prefix == f"sk_{mode}_"
    assert api_keys.MERCHANT_KEY_RANDOM_BYTES * 8 >= 192
    assert key.hint.startswith(f"sk_{mode}_") and "…" in key.hint


def test_generated_keys_are_distinct_and_well_spread() -> None:
    secrets_ = {generate_customer_key("acme", "test").secret for _ in range(2000)}
    assert len(secrets_) == 2000
    # The character after the fixed-width head's first char should use the whole alphabet.
    second_chars = {s.removeprefix("acme_test_")[1] for s in secrets_}
    assert len(second_chars) == 58


def test_generated_key_repr_hides_the_secret() -> None:
    key = generate_customer_key("acme", "live")
    random_part = key.secret.removeprefix(key.prefix)
    assert random_part not in repr(key)
    presented = parse_presented_key(key.secret)
    assert presented is not None and random_part not in repr(presented)


def test_generation_refuses_bad_mode_and_prefix() -> None:
    with pytest.raises(InvalidArgument) as mode_error:
        generate_customer_key("acme", "prod")
    assert mode_error.value.code == "invalid_mode"
    with pytest.raises(InvalidArgument) as prefix_error:
        generate_customer_key("sk", "test")
    assert prefix_error.value.code == "invalid_key_prefix"


# --- prefix validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["ab", "acme", "a1", "0x", "abcdefghijklmnop"])
def test_valid_prefixes(prefix: str) -> None:
    assert validate_key_prefix(prefix) == prefix


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "a",
        "abcdefghijklmnopq",
        "Acme",
        "ac_me",
        "ac-me",
        "acmé",
        " acme",
        "acme\n",
        "sk",
        "rk",
        "pk",
        None,
        12,
    ],
)
def test_invalid_prefixes(prefix: object) -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_key_prefix(prefix)
    assert error.value.code == "invalid_key_prefix"
    assert error.value.field == "key_prefix"


# --- hashing and hints ---------------------------------------------------------------------------


def test_hash_key_is_sha256_and_comparison_is_exact() -> None:
    assert hash_key("acme_test_x") == hashlib.sha256(b"acme_test_x").digest()
    assert hashes_equal(hash_key("a"), hash_key("a"))
    assert not hashes_equal(hash_key("a"), hash_key("b"))


def test_display_hint_of_short_or_odd_strings_reveals_nothing_much() -> None:
    assert display_hint("acme_test_abc") == "acme_test_…"
    assert display_hint("abcdefghijkl") == "abcd…ijkl"
    assert key_prefix_of("acme_live_xyz") == "acme_live_"


# --- parsing presented keys ---------------------------------------------------------------------


def test_parse_classifies_customer_and_merchant_keys() -> None:
    customer = generate_customer_key("acme", "live")
    merchant = generate_merchant_secret_key("test")
    parsed_customer = parse_presented_key(customer.secret)
    parsed_merchant = parse_presented_key(merchant.secret)
    assert parsed_customer is not None and parsed_customer.kind is KeyKind.CUSTOMER
    assert parsed_customer.merchant_prefix == "acme" and parsed_customer.mode is KeyMode.LIVE
    assert parsed_customer.key_hash == customer.key_hash
    assert parsed_merchant is not None and parsed_merchant.kind is KeyKind.MERCHANT
    assert parsed_merchant.mode is KeyMode.TEST and parsed_merchant.key_hash == merchant.key_hash


def test_customer_key_never_parses_as_merchant_key_and_vice_versa() -> None:
    customer = generate_customer_key("acme", "test").secret
    merchant = generate_merchant_secret_key("test").secret
    assert parse_merchant_key(customer) is None
    assert parse_customer_key(merchant) is None
    assert parse_customer_key(customer) is not None
    assert parse_merchant_key(merchant) is not None
    # A customer key made to look like a merchant key by a crafted prefix is impossible: "sk" is reserved.
    crafted = "sk_test_" + customer.removeprefix("acme_test_")
    parsed = parse_presented_key(crafted)
    assert parsed is not None and parsed.kind is KeyKind.MERCHANT  # it is a (non-existent) merchant key
    assert parse_customer_key(crafted) is None


def test_surrounding_whitespace_is_tolerated_and_hashes_the_bare_key() -> None:
    key = generate_customer_key("acme", "test")
    parsed = parse_presented_key(f"  {key.secret}\r\n")
    assert parsed is not None and parsed.key_hash == key.key_hash


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "\n",
        "x" * 10_000,
        "acme_test_" + "a" * 200,
        "acme_test_" + "1" * 21,  # too short
        "acme_prod_" + "1" * 33,  # unknown mode
        "ACME_test_" + "1" * 33,  # upper-case prefix
        "a_test_" + "1" * 33,  # one-char prefix
        "acme_test_" + "0" * 33,  # '0' is not base58
        "acme_test_" + "O" * 33,  # nor 'O', 'I', 'l'
        "acme_test_" + "1" * 32 + "_",
        "acme__test_" + "1" * 33,
        "acme_test_" + "1" * 32 + "é",
        "acmé_test_" + "1" * 33,
        "acme_test_" + "1" * 32 + "\u200b",  # zero-width space
        "acme_test_" + "1" * 32 + "\x00",
        "acme_test_" + "１" * 33,  # full-width digits
        "sk_test_",
        "sk_prod_" + "1" * 33,
        "sk_test_" + "1" * 10,
        "rk_test_" + "1" * 33,
        "pk_live_" + "1" * 33,
        "acme_test_" + "1" * 33 + "\n" + "x",
        "\ud800",  # lone surrogate
        "🔑" * 40,
    ],
)
def test_parse_refuses_bad_input_with_none(raw: str) -> None:
    assert parse_presented_key(raw) is None
    assert parse_customer_key(raw) is None
    assert parse_merchant_key(raw) is None


@pytest.mark.parametrize("raw", [None, 42, b"acme_test_" + b"1" * 33, ["acme"], object()])
def test_parse_refuses_non_strings_without_raising(raw: object) -> None:
    assert parse_presented_key(raw) is None


def test_parse_bounds_raw_length_at_128_before_anything_else() -> None:
    key = generate_customer_key("acme", "test").secret
    padded_to_128 = key + " " * (128 - len(key))
    parsed = parse_presented_key(padded_to_128)
    assert parsed is not None and parsed.secret == key
    assert parse_presented_key(padded_to_128 + " ") is None  # 129 chars, even though the key inside is fine


@given(st.text(max_size=300))
def test_parse_never_raises(raw: str) -> None:
    result = parse_presented_key(raw)
    if result is not None:
        assert result.secret.isascii() and len(result.secret) <= 128


def test_oversize_input_is_refused_quickly() -> None:
    huge = "acme_test_" + "1" * 10_000_000
    start = time.perf_counter()
    for _ in range(1000):
        assert parse_presented_key(huge) is None
    # 1000 refusals of a 10 MB string: must not scan the string (that would take seconds).
    assert time.perf_counter() - start < 0.05
