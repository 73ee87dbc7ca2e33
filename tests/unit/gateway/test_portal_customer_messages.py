"""The portal's sentence per refusal code (portal_views.CUSTOMER_MESSAGES): every code the API description
lists for the portal's routes has one, and none shows a code or an internal field name to the customer."""

from __future__ import annotations

import re

from webhook_gateway.entrypoints.openapi_document import OPERATIONS, _errors_of
from webhook_gateway.entrypoints.portal_views import CUSTOMER_MESSAGES, GENERIC_MESSAGE, customer_message


def _portal_codes() -> set[str]:
    codes: set[str] = set()
    for operation in OPERATIONS:
        if operation.path == "/access" or operation.path.startswith("/access/"):
            for listed in _errors_of(operation).values():
                codes.update(listed)
    return codes


def test_every_documented_portal_code_has_its_own_sentence() -> None:
    codes = _portal_codes()
    assert codes, "no portal operations found"
    missing = sorted(code for code in codes if code not in CUSTOMER_MESSAGES)
    assert not missing, f"portal refusal codes without a customer sentence: {missing}"


def test_sentences_are_short_plain_sentences_without_codes() -> None:
    for code, sentence in {**CUSTOMER_MESSAGES, "": GENERIC_MESSAGE}.items():
        assert sentence[0].isupper() and sentence.endswith("."), (code, sentence)
        assert len(sentence) <= 160, (code, sentence)
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", sentence), (code, sentence)  # no snake_case names


def test_an_unknown_code_gets_the_generic_sentence() -> None:
    assert customer_message("no_such_code_anywhere") == GENERIC_MESSAGE
    assert customer_message("scope_not_granted") == CUSTOMER_MESSAGES["scope_not_granted"]
