import math
from pathlib import Path

import orjson
import pytest

from bench.report import REQUIRED_KEYS, format_table, plot_latency, write_json


def _results(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "rate": 50.0,
        "duration_s": 10.0,
        "agents": 5,
        "sent": 500,
        "accepted": 500,
        "accepted_rps": 49.8,
        "p50_ms": 7.25,
        "p95_ms": 12.5,
        "p99_ms": math.nan,
        "lost": 0,
        "duplicated": 2,
        "ceiling_rps": 3692.2,
        "ratio": 0.0135,
        "processes": {"broker": {"cpu_avg_pct": 14.3, "cpu_max_pct": 22.9, "rss_max_mb": 39.9}},
        "ceiling_cpu_avg_pct": {"ceiling": 96.5, "loadgen": 99.0},
        "notes": ["the machine was shared"],
    }
    base.update(extra)
    return base


def test_write_json_turns_nan_into_null_and_keeps_the_required_keys(tmp_path: Path) -> None:
    path = tmp_path / "results" / "latest.json"
    write_json(path, _results())
    data = orjson.loads(path.read_bytes())
    assert set(REQUIRED_KEYS) <= set(data)
    assert data["p99_ms"] is None
    assert data["p50_ms"] == 7.25
    assert data["processes"]["broker"]["rss_max_mb"] == 39.9
    assert not list(path.parent.glob("*.tmp"))


def test_write_json_refuses_results_without_a_required_key(tmp_path: Path) -> None:
    write_json(tmp_path / "max.json", {"runs": []}, required=("runs",))
    incomplete = _results()
    del incomplete["ceiling_rps"]
    with pytest.raises(ValueError, match="ceiling_rps"):
        write_json(tmp_path / "latest.json", incomplete)


def test_the_table_shows_the_numbers_that_matter() -> None:
    table = format_table(_results())
    assert "50.0 webhooks/s for 10.0 s, 5 agents" in table
    assert "7.2 ms / 12.5 ms / n/a" in table or "7.3 ms / 12.5 ms / n/a" in table
    assert "DUPLICATED" in table and "3,692.2 req/s" in table
    assert "1.4 %" in table  # the suite's throughput as a share of the ceiling
    assert "broker" in table and "note: the machine was shared" in table
    assert "ceiling 96, loadgen 99" in table
    assert "n/a" in format_table(_results(ratio=None))


def test_the_latency_plot_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "latency.png"
    points = [(i / 10, 5.0 + (i % 7)) for i in range(50)]
    assert plot_latency(points, path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plot_latency([], tmp_path / "none.png", "empty")
    assert not (tmp_path / "none.png").exists()
