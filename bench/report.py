"""The run's results: the JSON document, the table on stdout, and the latency-over-time plot."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.stats import per_second

#: Keys every results document has (issue 8), whatever else a run adds.
REQUIRED_KEYS = (
    "rate",
    "duration_s",
    "accepted",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "lost",
    "duplicated",
    "ceiling_rps",
    "ratio",
)


def _clean(value: Any) -> Any:
    """NaN is not JSON: an unmeasured number is null."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 3)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, results: Mapping[str, Any], required: Sequence[str] = REQUIRED_KEYS) -> None:
    missing = [k for k in required if k not in results]
    if missing:
        raise ValueError(f"results lack {', '.join(missing)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(orjson.dumps(_clean(results), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    tmp.replace(path)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value}{unit}"


def format_table(results: Mapping[str, Any]) -> str:
    r = results
    rows: list[tuple[str, str]] = [
        (
            "offered load",
            f"{_fmt(r['rate'])} webhooks/s for {_fmt(r['duration_s'])} s, {_fmt(r.get('agents'))} agents",
        ),
        ("sent / accepted (2xx)", f"{_fmt(r.get('sent'))} / {_fmt(r['accepted'])}"),
        ("accepted per second", _fmt(r.get("accepted_rps"))),
        ("refused by in-flight bound", _fmt(r.get("refused"))),
        ("other failures", _fmt(r.get("failed"))),
        ("interactions (unique messages)", _fmt(r.get("interactions"))),
        (
            "offered / joined as message / on assign",
            f"{_fmt(r.get('offered'))} / {_fmt(r.get('delivered_as_message'))} / {_fmt(r.get('delivered_on_assign'))}",
        ),
        (
            "webhook->offer p50 / p95 / p99",
            f"{_fmt(r['p50_ms'], ' ms')} / {_fmt(r['p95_ms'], ' ms')} / {_fmt(r['p99_ms'], ' ms')}",
        ),
        (
            "webhook->message p50 / p99",
            f"{_fmt(r.get('message_p50_ms'), ' ms')} / {_fmt(r.get('message_p99_ms'), ' ms')}",
        ),
        ("LOST", _fmt(r["lost"])),
        ("DUPLICATED", _fmt(r["duplicated"])),
        ("re-offered after a rescind", _fmt(r.get("reoffered"))),
        (
            "calls accepted / seen on a desktop",
            f"{_fmt(r.get('calls_accepted'))} / {_fmt(r.get('calls_seen'))}",
        ),
        ("load generator lag p99", _fmt(r.get("scheduler_lag_p99_ms"), " ms")),
        (
            "bare ceiling",
            f"{_fmt(r['ceiling_rps'])} req/s (acks=all, best at {_fmt(r.get('ceiling_concurrency'))} concurrent)",
        ),
        ("suite / ceiling", _fmt(None if r["ratio"] is None else r["ratio"] * 100, " %")),
    ]
    during: Mapping[str, float] = r.get("ceiling_cpu_avg_pct") or {}
    if during:
        rows.append(("cpu % during the ceiling", ", ".join(f"{k} {v:.0f}" for k, v in during.items())))
    width = max(len(k) for k, _ in rows)
    lines = [f"  {k:<{width}}  {v}" for k, v in rows]
    processes: Mapping[str, Mapping[str, Any]] = r.get("processes") or {}
    if processes:
        lines.append("")
        lines.append(
            f"  {'process':<22}{'cpu avg %':>10}{'cpu max %':>10}{'rss max MB':>12}{'rss growth %':>14}"
        )
        for name, u in processes.items():
            lines.append(
                f"  {name:<22}{_fmt(u.get('cpu_avg_pct')):>10}{_fmt(u.get('cpu_max_pct')):>10}"
                f"{_fmt(u.get('rss_max_mb')):>12}{_fmt(u.get('rss_growth_pct')):>14}"
            )
    for note in r.get("notes") or ():
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def plot_latency(points: Sequence[tuple[float, float]], path: Path, title: str) -> bool:
    """Each offer's latency at its arrival time, with per-second p50 and p99; False if nothing to plot."""
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    try:
        ax.scatter([t for t, _ in points], [ms for _, ms in points], s=3, alpha=0.35, label="each offer")
        for q, style in ((50, "-"), (99, "--")):
            line = per_second(points, q)
            ax.plot(
                [t + 0.5 for t, _ in line],
                [v for _, v in line],
                style,
                linewidth=1.6,
                label=f"p{q} per second",
            )
        ax.set_xlabel("arrival time (s since the load started)")
        ax.set_ylabel("webhook -> offer (ms)")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return True
