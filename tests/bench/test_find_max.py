from typing import Any

from bench.find_max import next_rate, verdict


def _run(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "suite_ran": True,
        "rate": 1000.0,
        "accepted_rps": 995.0,
        "p99_ms": 31.0,
        "lost": 0,
        "duplicated": 0,
        "refused": 0,
        "failed": 0,
    }
    return {**base, **over}


def test_a_run_is_sustainable_only_if_nothing_is_lost_and_it_keeps_up_within_the_p99_limit() -> None:
    assert verdict(_run(), p99_limit_ms=50) == ""
    assert verdict(_run(lost=2), p99_limit_ms=50) == "2 lost"
    assert verdict(_run(refused=5), p99_limit_ms=50) == "5 refused"
    assert verdict(_run(accepted_rps=900.0), p99_limit_ms=50).startswith("fell behind")
    assert verdict(_run(p99_ms=51.0), p99_limit_ms=50).startswith("p99 51.0 ms")
    assert verdict(_run(p99_ms=None), p99_limit_ms=50).startswith("p99")
    assert verdict(_run(suite_ran=False), p99_limit_ms=50) == "the suite did not run"


def test_rates_double_until_a_failure_then_bisect_to_within_ten_percent() -> None:
    assert next_rate(None, None, 250) == 500
    assert next_rate(500, None, 500) == 1000
    assert next_rate(1000, 2000, 2000) == 1500
    assert next_rate(1500, 2000, 1500) == 1750
    assert next_rate(1750, 1900, 1900) is None  # within 10 % of 1750
    assert next_rate(None, 250, 250) is None  # even the first rate failed
