"""Frozen actors: out of the collector's walk while they run, their cyclic garbage still freed."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from lendo_poller.frozen_actors import FrozenActors, resident_bytes

MIB = 1024 * 1024


class Actor:
    """Stands for an actor that leaves a reference cycle behind, holding 1 MiB."""

    def __init__(self) -> None:
        self.itself = self
        self.payload = b"x" * MIB


@pytest.fixture(autouse=True)
def unfrozen_afterwards() -> Iterator[None]:
    """The freeze is process-wide: give the other tests back a collector that walks everything."""
    yield
    gc.unfreeze()
    gc.collect()


def test_running_actors_are_frozen_and_survive_a_collection() -> None:
    frozen = FrozenActors()
    actors = [Actor() for _ in range(10)]
    before = gc.get_freeze_count()

    frozen.check(in_flight=len(actors))

    assert gc.get_freeze_count() >= before + len(actors)
    gc.collect()
    assert all(actor.itself is actor for actor in actors)


def test_garbage_left_by_ended_actors_is_collected_once_it_outgrows_the_allowance() -> None:
    frozen = FrozenActors(actor_bytes=MIB, min_garbage=32 * MIB)
    actors = [Actor() for _ in range(64)]
    ended = [weakref.ref(actor) for actor in actors]
    frozen.check(in_flight=len(actors))
    del actors
    gc.collect()
    assert all(ref() is not None for ref in ended)  # frozen: no ordinary pass frees them
    with_garbage = resident_bytes()

    frozen.check(in_flight=0)

    assert all(ref() is None for ref in ended)
    assert frozen.collections == 2
    assert resident_bytes() < with_garbage - 32 * MIB


def test_memory_of_running_actors_within_the_allowance_does_not_cause_a_collection() -> None:
    frozen = FrozenActors(actor_bytes=2 * MIB, min_garbage=32 * MIB)
    actors = [Actor() for _ in range(64)]

    frozen.check(in_flight=len(actors))

    assert frozen.collections == 1
    assert all(actor.itself is actor for actor in actors)
