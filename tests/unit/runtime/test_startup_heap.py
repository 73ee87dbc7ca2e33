"""serve() freezes the start-up heap once the service is assembled: the cycle collector then skips the
long-lived objects every full collection used to walk again (paygate_runtime/serve.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from paygate_runtime.serve import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_start_up_heap_is_frozen_and_a_full_collection_no_longer_walks_it(unfrozen: None) -> None:
    kept = [[index] for index in range(50_000)]  # stands in for modules, descriptors and the app
    assert gc.get_freeze_count() == 0
    freeze_startup_heap()
    assert gc.get_freeze_count() >= len(kept)
    tracked = len(gc.get_objects())
    assert tracked < len(kept)  # the collector no longer sees them


def test_frozen_objects_are_still_freed_by_reference_counting(unfrozen: None) -> None:
    import weakref

    class Holder:
        pass

    holder = Holder()
    ref = weakref.ref(holder)
    freeze_startup_heap()
    del holder
    assert ref() is None
