"""One Stripe API key per mode: PAYGATE_STRIPE_API_KEY_TEST / _LIVE, and PAYGATE_STRIPE_API_KEY, which is the key
of the mode its prefix names. Contradictions stop start-up naming the variable, never printing the key."""

from __future__ import annotations

import secrets

import pytest

from paygate_runtime.config import ConfigError, Env
from paygate_runtime.settings import CommonSettings
from webhook_gateway.entrypoints.main import GatewayConfig, load_config

DSN = "postgresql://paygate@127.0.0.1:5432/paygate"


def key(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


TEST, LIVE = key("sk_test_"), key("rk_live_")


def start(**env: str) -> GatewayConfig:
    """What `paygate serve gateway` does before anything listens: the secret checks, then the config."""
    environ = Env({"PAYGATE_DATABASE_URL": DSN, **env})
    CommonSettings.from_env("gateway", environ)
    return load_config(environ)


def refused(**env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        start(**env)
    for value in env.values():
        assert value not in str(caught.value)
        assert value[8:] not in str(caught.value)
    return caught.value


def test_no_key_no_stripe() -> None:
    assert start().stripe_api_keys == {}


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (key("sk_test_"), "test"),
        (key("rk_test_"), "test"),
        (key("sk_live_"), "live"),
        (key("rk_live_"), "live"),
    ],
    ids=["sk_test", "rk_test", "sk_live", "rk_live"],
)
def test_the_unsuffixed_key_is_the_key_of_the_mode_its_prefix_names(value: str, mode: str) -> None:
    assert start(PAYGATE_STRIPE_API_KEY=value).stripe_api_keys == {mode: value}


@pytest.mark.parametrize("mode", ["test", "live"])
def test_a_suffixed_key_alone_turns_its_mode_on(mode: str) -> None:
    # Setting only PAYGATE_STRIPE_API_KEY_LIVE used to start the gateway with Stripe Checkout silently off.
    value = LIVE if mode == "live" else TEST
    assert start(**{f"PAYGATE_STRIPE_API_KEY_{mode.upper()}": value}).stripe_api_keys == {mode: value}


def test_both_modes_together() -> None:
    both = {"test": TEST, "live": LIVE}
    assert start(PAYGATE_STRIPE_API_KEY_TEST=TEST, PAYGATE_STRIPE_API_KEY_LIVE=LIVE).stripe_api_keys == both
    # The unsuffixed key lands in its own mode beside the other mode's suffixed variable, either way round.
    assert start(PAYGATE_STRIPE_API_KEY=LIVE, PAYGATE_STRIPE_API_KEY_TEST=TEST).stripe_api_keys == both
    assert start(PAYGATE_STRIPE_API_KEY=TEST, PAYGATE_STRIPE_API_KEY_LIVE=LIVE).stripe_api_keys == both
    # The same key under both names of its mode is no contradiction.
    config = start(
        PAYGATE_STRIPE_API_KEY=LIVE, PAYGATE_STRIPE_API_KEY_LIVE=LIVE, PAYGATE_STRIPE_API_KEY_TEST=TEST
    )
    assert config.stripe_api_keys == both


def test_the_keys_are_never_printed() -> None:
    config = start(PAYGATE_STRIPE_API_KEY_TEST=TEST, PAYGATE_STRIPE_API_KEY_LIVE=LIVE)
    assert TEST not in repr(config) and LIVE not in repr(config)


@pytest.mark.parametrize(
    ("variable", "value"), [("_TEST", key("sk_live_")), ("_LIVE", key("rk_test_"))], ids=["test", "live"]
)
def test_a_suffixed_variable_holding_the_other_modes_key_stops_start_up(variable: str, value: str) -> None:
    error = refused(**{f"PAYGATE_STRIPE_API_KEY{variable}": value})
    assert error.variable == f"PAYGATE_STRIPE_API_KEY{variable}"


@pytest.mark.parametrize(
    ("plain", "suffixed", "other"),
    [
        (TEST, "PAYGATE_STRIPE_API_KEY_TEST", key("sk_test_")),
        (LIVE, "PAYGATE_STRIPE_API_KEY_LIVE", key("sk_live_")),
    ],
    ids=["test", "live"],
)
def test_two_different_keys_for_one_mode_stop_start_up(plain: str, suffixed: str, other: str) -> None:
    # Which of the two would run would be left to chance.
    error = refused(PAYGATE_STRIPE_API_KEY=plain, **{suffixed: other})
    assert error.variable == suffixed
    assert "PAYGATE_STRIPE_API_KEY" in error.problem


def test_one_key_for_both_modes_stops_start_up() -> None:
    # At start the secret checks refuse it first (a test key behind _LIVE)...
    assert refused(PAYGATE_STRIPE_API_KEY_TEST=TEST, PAYGATE_STRIPE_API_KEY_LIVE=TEST).variable == (
        "PAYGATE_STRIPE_API_KEY_LIVE"
    )
    # ...and the configuration itself never takes one key for both modes either.
    for env in (
        {"PAYGATE_STRIPE_API_KEY_TEST": TEST, "PAYGATE_STRIPE_API_KEY_LIVE": TEST},
        {"PAYGATE_STRIPE_API_KEY": TEST, "PAYGATE_STRIPE_API_KEY_LIVE": TEST},
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(Env(env))
        assert caught.value.variable == "PAYGATE_STRIPE_API_KEY_LIVE"
        assert TEST not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    ["pk_live_" + secrets.token_hex(12), "sk_" + secrets.token_hex(12)],
    ids=["publishable", "no_mode"],
)
def test_an_unsuffixed_key_of_no_mode_stops_start_up(value: str) -> None:
    # As before: the secret checks refuse a publishable key or a key whose prefix names no mode.
    assert refused(PAYGATE_STRIPE_API_KEY=value).variable == "PAYGATE_STRIPE_API_KEY"
    # The configuration cannot place it in a mode, and never uses it for both.
    with pytest.raises(ConfigError) as caught:
        load_config(Env({"PAYGATE_STRIPE_API_KEY": value}))
    assert caught.value.variable == "PAYGATE_STRIPE_API_KEY" and value not in str(caught.value)
