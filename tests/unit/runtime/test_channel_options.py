"""Client channel options: round-robin only where a name stands for several replicas."""

from __future__ import annotations

from paygate_runtime.grpc_client import channel_options


def test_a_dns_target_balances_over_every_address() -> None:
    assert ("grpc.lb_policy_name", "round_robin") in channel_options("dns:///paygate-session-headless:50051")


def test_a_plain_address_keeps_pick_first_so_a_restarted_peer_is_reconnected_on_the_next_call() -> None:
    # With round_robin, a single subchannel in TRANSIENT_FAILURE after a peer restart fails calls at once
    # (tests/integration/keys/test_keys_access_token_rpcs.py's rotation test saw 503 from the gateway).
    assert all(key != "grpc.lb_policy_name" for key, _ in channel_options("127.0.0.1:50053"))
