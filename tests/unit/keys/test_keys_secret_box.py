from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys_service.domain.secret_contexts import CUSTOMER_KEY_SECRET_CONTEXT as CONTEXT
from paygate_runtime.crypto.key_material import decode_key_32
from paygate_runtime.crypto.secret_box import (
    NONCE_BYTES,
    TAG_BYTES,
    SecretBox,
    SecretBoxError,
    generate_encryption_key_text,
)

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(100, 132))
SECRET = "acme_test_3xQa9aZkF7tsTWaSWtuEXAxav3k8pppFK"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def b64url_unpadded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b64(KEY_1),
        b64(KEY_1).rstrip("="),
        b64url_unpadded(KEY_1),
        base64.urlsafe_b64encode(KEY_1).decode(),
        f"  {b64(KEY_1)}\n",
    ],
)
def test_key_material_accepts_base64_and_base64url(text: str) -> None:
    assert decode_key_32(text, "test key") == KEY_1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (b64(os.urandom(16)), "32 bytes, got 16"),
        (b64(os.urandom(33)), "32 bytes, got 33"),
        ("not base64!!", "not base64"),
        ("ab+/cd-_" * 6, "mixes"),
        ("é" * 43, "not base64"),
        ("A", "not valid base64"),
    ],
    ids=["empty", "blank", "16_bytes", "33_bytes", "not_base64", "mixed_alphabets", "non_ascii", "one_char"],
)
def test_key_material_errors_name_the_problem_and_not_the_key(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as error:
        decode_key_32(text, "PAYGATE_KEYS_ENCRYPTION_KEYS")
    message = str(error.value)
    assert problem in message
    assert "PAYGATE_KEYS_ENCRYPTION_KEYS" in message
    if len(text.strip()) > 4:
        assert text.strip() not in message


def test_from_config_single_key_is_version_1() -> None:
    box = SecretBox.from_config(b64(KEY_1), context=CONTEXT)
    assert box.current_version == 1 and box.versions == (1,)


def test_from_config_several_versions_newest_encrypts() -> None:
    box = SecretBox.from_config(f"1:{b64(KEY_1)}, 2:{b64url_unpadded(KEY_2)}", context=CONTEXT)
    assert box.versions == (1, 2) and box.current_version == 2
    pinned = SecretBox.from_config(f"1:{b64(KEY_1)} 2:{b64(KEY_2)}", current_version=1, context=CONTEXT)
    assert pinned.current_version == 1


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "empty"),
        (f"{b64(KEY_1)},{b64(KEY_2)}", "no '<version>:' prefix"),
        (f"1:{b64(KEY_1)},1:{b64(KEY_2)}", "configured twice"),
        (f"0:{b64(KEY_1)}", "1..255"),
        (f"256:{b64(KEY_1)}", "1..255"),
        (f"1:{b64(os.urandom(31))}", "version 1: must decode to 32 bytes"),
    ],
    ids=["empty", "no_version", "twice", "version_0", "version_256", "31_bytes"],
)
def test_from_config_refuses_bad_config(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match="encryption key") as error:
        SecretBox.from_config(spec, context=CONTEXT)
    assert problem in str(error.value)


def test_from_config_refuses_unconfigured_current_version() -> None:
    with pytest.raises(ValueError, match="current version 3"):
        SecretBox.from_config(f"1:{b64(KEY_1)}", current_version=3, context=CONTEXT)


def test_generated_key_text_is_loadable() -> None:
    assert SecretBox.from_config(generate_encryption_key_text(), context=CONTEXT).current_version == 1


# --- encryption ----------------------------------------------------------------------------------


def test_roundtrip_and_layout() -> None:
    box = SecretBox({1: KEY_1}, context=CONTEXT)
    blob = box.encrypt(SECRET, "key-1")
    assert blob[0] == 1
    assert len(blob) == 1 + NONCE_BYTES + len(SECRET) + TAG_BYTES
    assert SECRET.encode() not in blob
    assert box.decrypt(blob, "key-1") == SECRET


def test_blob_is_real_aes_gcm_under_the_configured_key() -> None:
    # Decrypt with a separately constructed AESGCM to prove the format is what the module doc says.
    blob = SecretBox({1: KEY_1}, context=CONTEXT).encrypt(SECRET, "key-1")
    nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    ad = CONTEXT + b"\x00" + b"\x01" + b"key-1"
    assert AESGCM(KEY_1).decrypt(nonce, sealed, ad).decode() == SECRET


def test_nonces_are_fresh() -> None:
    box = SecretBox({1: KEY_1}, context=CONTEXT)
    blobs = {box.encrypt(SECRET, "key-1") for _ in range(200)}
    assert len(blobs) == 200
    assert len({b[1 : 1 + NONCE_BYTES] for b in blobs}) == 200


def test_ciphertext_bound_to_key_id_cannot_be_swapped_between_rows() -> None:
    box = SecretBox({1: KEY_1}, context=CONTEXT)
    blob_for_a = box.encrypt(SECRET, "key-a")
    with pytest.raises(SecretBoxError, match="authentication"):
        box.decrypt(blob_for_a, "key-b")


@pytest.mark.parametrize("position", [1, 1 + NONCE_BYTES, -1, -TAG_BYTES - 1])
def test_any_flipped_bit_is_detected(position: int) -> None:
    box = SecretBox({1: KEY_1}, context=CONTEXT)
    blob = bytearray(box.encrypt(SECRET, "key-1"))
    blob[position] ^= 0x01
    with pytest.raises(SecretBoxError):
        box.decrypt(bytes(blob), "key-1")


def test_changed_version_byte_is_detected() -> None:
    box = SecretBox({1: KEY_1, 2: KEY_2}, current_version=1, context=CONTEXT)
    blob = bytearray(box.encrypt(SECRET, "key-1"))
    blob[0] = 2
    with pytest.raises(SecretBoxError):
        box.decrypt(bytes(blob), "key-1")


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x01" + b"\x00" * (NONCE_BYTES + TAG_BYTES - 1)])
def test_truncated_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(SecretBoxError, match="truncated"):
        SecretBox({1: KEY_1}, context=CONTEXT).decrypt(blob, "key-1")


def test_wrong_key_is_refused() -> None:
    blob = SecretBox({1: KEY_1}, context=CONTEXT).encrypt(SECRET, "key-1")
    with pytest.raises(SecretBoxError):
        SecretBox({1: KEY_2}, context=CONTEXT).decrypt(blob, "key-1")


def test_error_messages_carry_no_plaintext() -> None:
    box = SecretBox({1: KEY_1}, context=CONTEXT)
    blob = box.encrypt(SECRET, "key-1")
    with pytest.raises(SecretBoxError) as error:
        box.decrypt(blob, "key-2")
    assert SECRET not in str(error.value) and SECRET not in repr(error.value)


def test_encrypt_requires_a_key_id() -> None:
    with pytest.raises(ValueError, match="key_id"):
        SecretBox({1: KEY_1}, context=CONTEXT).encrypt(SECRET, "")


# --- rotation ------------------------------------------------------------------------------------


def test_rotation_old_blobs_open_and_reencrypt_under_the_new_key() -> None:
    old_box = SecretBox({1: KEY_1}, context=CONTEXT)
    old_blob = old_box.encrypt(SECRET, "key-1")
    rotated = SecretBox({1: KEY_1, 2: KEY_2}, context=CONTEXT)
    assert rotated.current_version == 2
    assert rotated.needs_rotation(old_blob)
    assert rotated.decrypt(old_blob, "key-1") == SECRET
    new_blob = rotated.reencrypt(old_blob, "key-1")
    assert new_blob[0] == 2 and not rotated.needs_rotation(new_blob)
    # Once key 1 is retired, only the re-encrypted blob still opens.
    retired = SecretBox({2: KEY_2}, context=CONTEXT)
    assert retired.decrypt(new_blob, "key-1") == SECRET
    with pytest.raises(SecretBoxError, match="version 1"):
        retired.decrypt(old_blob, "key-1")


@pytest.mark.parametrize(
    "keys",
    [{}, {0: KEY_1}, {256: KEY_1}, {1: b"short"}, {True: KEY_1}],
)
def test_constructor_refuses_bad_keyrings(keys: dict[int, bytes]) -> None:
    with pytest.raises(ValueError):
        SecretBox(keys, context=CONTEXT)
