"""The mail proof of an access link (keys domain): keyed to the token's jti, never equal across tokens or
secrets, checked in constant time, and any text a visitor puts in `proof` is a plain no."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys_service.domain.access_tokens import (
    MAX_MAIL_PROOF_CHARS,
    mail_proof,
    mail_proof_matches,
    opaque_subject,
)
from paygate_runtime.errors import InvalidArgument

SECRET = b"s" * 32
JTI = "0b7f3f1e-2a8c-4d6e-9f10-1a2b3c4d5e6f"


def test_the_proof_is_stable_keyed_and_per_token() -> None:
    proof = mail_proof(JTI, SECRET)
    assert proof == mail_proof(JTI, SECRET) and proof.isalnum() and len(proof) == 22
    assert mail_proof("1b7f3f1e-2a8c-4d6e-9f10-1a2b3c4d5e6f", SECRET) != proof
    assert mail_proof(JTI, b"t" * 32) != proof
    # Its own context: never the subject of the same input under the same secret.
    assert proof not in opaque_subject("m-1", JTI, SECRET)
    assert mail_proof_matches(JTI, proof, SECRET)
    for wrong in ("", proof[:-1], proof + "1", proof.swapcase(), "x" * (MAX_MAIL_PROOF_CHARS + 1)):
        assert not mail_proof_matches(JTI, wrong, SECRET), wrong


def test_a_weak_secret_or_no_jti_is_refused() -> None:
    with pytest.raises(ValueError):
        mail_proof(JTI, b"short")
    with pytest.raises(InvalidArgument):
        mail_proof("", SECRET)


@given(st.text(max_size=2 * MAX_MAIL_PROOF_CHARS))
def test_any_visitor_text_is_a_plain_no(proof: str) -> None:
    assert mail_proof_matches(JTI, proof, SECRET) is (proof == mail_proof(JTI, SECRET))
