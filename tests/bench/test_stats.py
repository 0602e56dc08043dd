import math

import pytest

from bench.stats import LatencySummary, per_second, percentile


def test_percentile_interpolates_between_closest_ranks_like_numpy() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0) == 1
    assert percentile(values, 100) == 10
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 99) == pytest.approx(9.91)


def test_percentile_does_not_depend_on_input_order() -> None:
    assert percentile([30.0, 10.0, 20.0], 50) == 20
    assert percentile([5.0], 99) == 5


def test_percentile_of_nothing_is_not_a_number_and_bad_q_is_refused() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary() -> None:
    s = LatencySummary.of([4.0, 1.0, 2.0, 3.0])
    assert (s.count, s.max_ms, s.mean_ms) == (4, 4.0, 2.5)
    assert s.p50_ms == pytest.approx(2.5)
    assert LatencySummary.of([]).count == 0


def test_per_second_buckets_by_whole_second() -> None:
    points = [(0.1, 10.0), (0.9, 30.0), (1.0, 5.0), (2.5, 7.0)]
    assert per_second(points, 50) == [(0.0, 20.0), (1.0, 5.0), (2.0, 7.0)]
