from bench.loadgen import keep_climbing


def test_the_concurrency_doubles_while_throughput_still_grows() -> None:
    assert keep_climbing([], 0)
    assert keep_climbing([1000.0], 0)
    assert keep_climbing([1000.0, 1800.0], 0)
    assert keep_climbing([1000.0, 1800.0, 2500.0], 0)


def test_it_stops_when_a_doubling_adds_less_than_five_percent_or_requests_fail() -> None:
    assert not keep_climbing([1000.0, 1800.0, 1850.0], 0)
    assert not keep_climbing([1000.0, 900.0], 0)
    assert not keep_climbing([1000.0, 1800.0], 3)
