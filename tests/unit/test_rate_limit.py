"""The in-memory token bucket behind every rate limit (``live.limits.bucket``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from live.limits import RateLimit
from live.limits.bucket import MAX_KEYS


def test_a_burst_then_one_token_per_refill_interval() -> None:
    limit = RateLimit(per_minute=6, burst=3)
    assert [limit.take("k", 0.0) for _ in range(4)] == [0.0, 0.0, 0.0, 10.0]
    assert limit.wait("k", 5.0) == 5.0  # half a token refilled
    assert limit.take("k", 10.0) == 0.0
    assert limit.take("other", 10.0) == 0.0  # keys are apart


def test_wait_spends_nothing_and_spend_counts_even_when_empty() -> None:
    limit = RateLimit(per_minute=60, burst=2)
    assert limit.wait("k", 0.0) == limit.wait("k", 0.0) == 0.0
    for _ in range(5):
        limit.spend("k", 0.0)
    assert limit.wait("k", 0.0) == 1.0  # no debt below the default floor of 0


def test_debt_makes_a_persistent_failer_wait_longer_each_time() -> None:
    limit = RateLimit(per_minute=60, burst=2, floor=-2)
    waits = []
    for _ in range(5):
        limit.spend("k", 0.0)
        waits.append(limit.wait("k", 0.0))
    assert waits == [0.0, 1.0, 2.0, 3.0, 3.0]  # down to the floor, then no further


def test_an_unset_limit_never_waits() -> None:
    limit = RateLimit(per_minute=0, burst=0)
    limit.spend("k", 0.0)
    assert limit.take("k", 0.0) == limit.wait("k", 0.0) == 0.0
    assert not limit.buckets


def test_full_buckets_are_forgotten_when_there_are_too_many() -> None:
    limit = RateLimit(per_minute=60, burst=1)
    for n in range(MAX_KEYS):
        limit.spend(f"k{n}", 0.0)
    limit.spend("late", 1000.0)  # every earlier bucket is full again by now
    assert list(limit.buckets) == ["late"]


@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["wait", "spend", "take"]), st.floats(min_value=0, max_value=30)),
        max_size=40,
    ),
    per_minute=st.integers(min_value=1, max_value=120),
    burst=st.integers(min_value=1, max_value=20),
    debt=st.booleans(),
)
def test_tokens_stay_between_floor_and_burst_and_take_only_when_a_token_is_there(
    steps: list[tuple[str, float]], per_minute: int, burst: int, debt: bool
) -> None:
    limit = RateLimit(per_minute, burst, floor=-burst if debt else 0)
    now = 0.0
    for operation, elapsed in steps:
        now += elapsed
        before = limit.wait("k", now)  # refills the bucket up to now
        tokens = limit.buckets["k"].tokens
        if operation == "take":
            assert limit.take("k", now) == before
            assert limit.buckets["k"].tokens == (tokens - 1 if before == 0 else tokens)
        elif operation == "spend":
            limit.spend("k", now)
            assert limit.buckets["k"].tokens == max(limit.floor, tokens - 1)
        assert limit.floor <= limit.buckets["k"].tokens <= burst
        assert (before == 0) == (tokens >= 1)
