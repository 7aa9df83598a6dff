"""engine.prefetch: items in order, a bounded lead whatever the pace, errors where they happened,
and no thread left behind when the consumer stops early."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.prefetch import prefetch
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("no_leaked_threads")


class Counted:
    """A source of ``n`` items noting how many it has made and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at
        self.made = 0
        self.closed = False
        self.threads: set[str] = set()

    def __iter__(self) -> Iterator[int]:
        try:
            for k in range(self.n):
                self.threads.add(threading.current_thread().name)
                if k == self.fail_at:
                    raise OSError(f"item {k} cannot be made")
                self.made += 1
                yield k
        finally:
            self.closed = True


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 30), depth=st.integers(1, 4), pauses=st.lists(st.integers(0, 3), max_size=30))
def test_the_maker_is_never_more_than_depth_plus_one_ahead(n: int, depth: int, pauses: list[int]) -> None:
    source = Counted(n)
    seen = []
    lead = 0
    for k in prefetch(iter(source), depth):
        seen.append(k)
        # let the maker run ahead as far as it may (a slow consumer), by yielding the GIL
        for _ in range(pauses[k % len(pauses)] * 200 if pauses else 0):
            threading.Event().wait(0)
        lead = max(lead, source.made - len(seen))
    assert seen == list(range(n))
    assert lead <= depth + 1
    assert source.closed


def test_a_slow_consumer_lets_the_maker_fill_its_slots_and_no_more() -> None:
    source = Counted(30)
    items = prefetch(iter(source), 2)
    assert next(items) == 0
    # the maker fills the two slots and makes one more, which waits for a slot
    wait_until(lambda: source.made >= 4, 10.0, "the maker to run ahead")
    assert source.made == 4
    assert list(items) == list(range(1, 30))


def test_the_items_are_made_in_another_thread_and_the_source_closed_there() -> None:
    source = Counted(3)
    assert list(prefetch(iter(source), 1, name="pages")) == [0, 1, 2]
    assert source.threads == {"pages"}
    assert source.closed


def test_an_error_of_the_source_is_raised_at_its_item() -> None:
    source = Counted(5, fail_at=3)
    seen = []
    with pytest.raises(OSError, match="item 3"):
        for k in prefetch(iter(source), 2):
            seen.append(k)
    assert seen == [0, 1, 2]
    assert source.closed


def test_a_consumer_that_stops_early_stops_the_maker() -> None:
    source = Counted(1000)
    items = prefetch(iter(source), 2)
    assert [next(items), next(items)] == [0, 1]
    items.close()  # type: ignore[attr-defined]
    assert source.closed
    assert source.made <= 5


def test_depth_zero_reads_in_this_thread() -> None:
    source = Counted(3)
    assert list(prefetch(iter(source), 0)) == [0, 1, 2]
    assert source.threads == {threading.current_thread().name}


def test_a_negative_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="depth"):
        list(prefetch(iter([1]), -1))
