"""serve() freezes the start-up heap once the service is assembled: the cycle collector then skips the
long-lived objects every full collection used to walk again; and it raises the young generation's threshold,
so that the requests a service holds in flight no longer set off collections (paygate_runtime/serve.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from paygate_runtime.serve import tune_cycle_collector


@pytest.fixture
def unfrozen() -> Iterator[None]:
    # The test process's own collector is left as it was found: unfrozen, with its thresholds (which
    # tune_cycle_collector and default_threshold change).
    saved = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*saved)


def test_the_start_up_heap_is_frozen_and_a_full_collection_no_longer_walks_it(unfrozen: None) -> None:
    kept = [[index] for index in range(50_000)]  # stands in for modules, descriptors and the app
    assert gc.get_freeze_count() == 0
    tune_cycle_collector()
    assert gc.get_freeze_count() >= len(kept)
    tracked = len(gc.get_objects())
    assert tracked < len(kept)  # the collector no longer sees them


def test_frozen_objects_are_still_freed_by_reference_counting(unfrozen: None) -> None:
    import weakref

    class Holder:
        pass

    holder = Holder()
    ref = weakref.ref(holder)
    tune_cycle_collector()
    del holder
    assert ref() is None


@pytest.fixture
def default_threshold(unfrozen: None) -> None:
    gc.set_threshold(700, 10, 10)  # Python's default, which serve() replaces; `unfrozen` restores the test's


def test_requests_held_in_flight_do_not_set_off_young_collections(default_threshold: None) -> None:
    tune_cycle_collector()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        # About what 64 webhooks in flight keep alive: their parsed bodies, normalised events and responses.
        in_flight = [{"id": index, "data": {"object": [index]}} for index in range(4_000)]
    finally:
        gc.callbacks.remove(count)
    assert len(in_flight) == 4_000
    assert collections == []
    assert gc.isenabled()
