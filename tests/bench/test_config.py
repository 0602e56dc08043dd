from pathlib import Path

import pytest

from bench.config import SOAK_DURATION_S, SOAK_RATE, BenchConfig


def test_defaults_are_the_issue_s_load() -> None:
    cfg = BenchConfig.from_env({})
    assert (cfg.rate, cfg.duration_s, cfg.agents, cfg.soak) == (200, 30, 50, False)


def test_bench_variables_set_the_load() -> None:
    cfg = BenchConfig.from_env(
        {"BENCH_RATE": "50", "BENCH_DURATION": "10", "BENCH_AGENTS": "5", "BENCH_OUT": "/tmp/x"}
    )
    assert (cfg.rate, cfg.duration_s, cfg.agents, cfg.out_dir) == (50, 10, 5, Path("/tmp/x"))


def test_a_soak_is_ten_minutes_at_a_moderate_rate_unless_told_otherwise() -> None:
    cfg = BenchConfig.from_env({"BENCH_SOAK": "1"})
    assert (cfg.soak, cfg.rate, cfg.duration_s) == (True, SOAK_RATE, SOAK_DURATION_S)
    assert BenchConfig.from_env({"BENCH_SOAK": "1", "BENCH_RATE": "300"}).rate == 300


def test_bad_values_are_refused_naming_the_variable() -> None:
    with pytest.raises(SystemExit, match="BENCH_RATE"):
        BenchConfig.from_env({"BENCH_RATE": "-1", "BENCH_AGENTS": "0"})
