"""One.com and web3 events carry no mode: the secret that verifies them decides it (contract §6a)."""

from __future__ import annotations

import base64
import secrets
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate_dev.devtools.signing import standard_delivery
from paygate_runtime.config import ConfigError, Env
from webhook_gateway.entrypoints.main import load_config
from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.standard_webhooks import normalize_onecom, verify_standard


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


TEST, LIVE, OTHER = whsec(), whsec(), whsec()
BODY = {
    "type": "payment.succeeded",
    "data": {
        "session_id": "00000000-0000-4000-8000-000000000001",
        "transaction_id": "t",
        "amount_minor": 5,
        "currency": "EUR",
    },
}


@pytest.mark.parametrize(("secret", "mode"), [(TEST, "test"), (LIVE, "live")], ids=["test", "live"])
def test_the_verifying_secret_decides_the_mode(secret: str, mode: str) -> None:
    now = int(time.time())
    raw, headers = standard_delivery(BODY, secret, now)
    envelope = verify_standard(raw, headers, {"test": [TEST], "live": [LIVE]}, now)
    assert envelope.mode == mode
    assert normalize_onecom(envelope).livemode is (mode == "live")


def test_a_plain_list_is_the_test_modes_and_an_unknown_secret_is_refused() -> None:
    now = int(time.time())
    raw, headers = standard_delivery(BODY, TEST, now)
    assert verify_standard(raw, headers, [TEST], now).mode == "test"
    raw, headers = standard_delivery(BODY, OTHER, now)
    with pytest.raises(WebhookRejected):
        verify_standard(raw, headers, {"test": [TEST], "live": [LIVE]}, now)


@given(live_first=st.booleans())
def test_a_delivery_signed_with_both_is_never_taken_for_the_wrong_mode(live_first: bool) -> None:
    """Only one of the lists can verify a signature made with one secret, whatever the order of the lists."""
    now = int(time.time())
    raw, headers = standard_delivery(BODY, LIVE, now)
    lists = {"live": [LIVE], "test": [TEST]} if live_first else {"test": [TEST], "live": [LIVE]}
    assert verify_standard(raw, headers, lists, now).mode == "live"


def test_config_reads_per_mode_lists_and_the_unsuffixed_list_is_test() -> None:
    config = load_config(
        Env(
            {
                "PAYGATE_ONECOM_WEBHOOK_SECRETS": TEST,
                "PAYGATE_ONECOM_WEBHOOK_SECRETS_TEST": OTHER,
                "PAYGATE_ONECOM_WEBHOOK_SECRETS_LIVE": LIVE,
                "PAYGATE_WEB3_WEBHOOK_SECRETS_LIVE": LIVE,
            }
        )
    )
    assert config.onecom_webhook_secrets == [TEST, OTHER]
    assert config.onecom_webhook_secrets_live == [LIVE]
    assert (config.web3_webhook_secrets, config.web3_webhook_secrets_live) == ([], [LIVE])


def test_one_secret_in_both_modes_stops_start_up() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            Env(
                {
                    "PAYGATE_ONECOM_WEBHOOK_SECRETS_TEST": TEST,
                    "PAYGATE_ONECOM_WEBHOOK_SECRETS_LIVE": f"{LIVE},{TEST}",
                }
            )
        )
    assert "PAYGATE_ONECOM_WEBHOOK_SECRETS_LIVE" in str(caught.value)
    assert TEST not in str(caught.value)
