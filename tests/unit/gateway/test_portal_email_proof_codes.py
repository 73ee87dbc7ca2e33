"""The portal's email proof, pure parts: the typed code's parser (outside input), the masked address and the
code mail (nothing typed by the visitor reaches a header)."""

from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy

from hypothesis import given
from hypothesis import strategies as st

from webhook_gateway.entrypoints import portal_email_proof, portal_support

SETTINGS = portal_support.SupportMailSettings("127.0.0.1", 2525, "paygate@example.test")


def test_a_new_code_is_eight_digits_and_varies() -> None:
    codes = {portal_email_proof.new_code() for _ in range(200)}
    assert all(len(c) == 8 and c.isdigit() for c in codes)
    assert len(codes) > 190


def test_typed_codes_may_carry_spaces_and_dashes() -> None:
    assert portal_email_proof.clean_code("0123 4567") == "01234567"
    assert portal_email_proof.clean_code(" 0123-4567\t") == "01234567"
    for bad in ("", "1234567", "123456789", "1234567a", "١٢٣٤٥٦٧٨", "1234\n5678", None, 12345678):
        assert portal_email_proof.clean_code(bad) is None, bad


@given(st.one_of(st.text(max_size=40), st.none(), st.integers(), st.binary(max_size=16)))
def test_the_parser_returns_eight_ascii_digits_or_none(raw: object) -> None:
    cleaned = portal_email_proof.clean_code(raw)
    assert cleaned is None or (len(cleaned) == 8 and cleaned.isascii() and cleaned.isdigit())


@given(st.from_regex(r"[0-9]{8}", fullmatch=True), st.lists(st.sampled_from(" -"), max_size=4))
def test_any_code_with_separators_reads_back(code: str, separators: list[str]) -> None:
    typed = "".join(separators) + code[:4] + "".join(separators) + code[4:]
    assert portal_email_proof.clean_code(typed) == code


def test_the_address_is_masked_and_only_strict_addresses_are_mailed() -> None:
    assert portal_email_proof.masked("ann@example.com") == "a•••@example.com"
    assert portal_email_proof.mailable("ann@example.com")
    for bad in (
        "",
        "ann",
        "ann@example.com\r\nBcc: evil@example.com",
        "a,b@example.com",
        "x" * 250 + "@e.io",
    ):
        assert not portal_email_proof.mailable(bad), bad


def test_the_code_mail_names_only_the_purchase_address() -> None:
    message = portal_email_proof.build_code_message(
        SETTINGS, to="ann@example.com", code="01234567", session_reference="sess-1", minutes=15
    )
    parsed = message_from_bytes(message.as_bytes(), policy=email_policy.default)
    assert parsed["To"] == "ann@example.com" and parsed["From"] == "paygate@example.test"
    assert parsed["Subject"] == "Your code to see your receipts"
    body = parsed.get_body().get_content()  # type: ignore[union-attr]
    assert "Your code: 01234567" in body and "15 minutes" in body and "sess-1" in body
