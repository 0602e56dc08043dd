"""The benchmark's knobs, from BENCH_* environment variables, validated once with errors that name them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ROOT = Path(__file__).resolve().parent.parent
SOAK_RATE = 100.0
SOAK_DURATION_S = 600.0


class BenchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: float = Field(default=200.0, gt=0, description="BENCH_RATE: webhooks per second (open loop)")
    duration_s: float = Field(default=30.0, gt=0, description="BENCH_DURATION: seconds of load")
    agents: int = Field(default=50, ge=1, le=5000, description="BENCH_AGENTS: simulated agents")
    soak: bool = Field(default=False, description="BENCH_SOAK: 10 minutes at a moderate rate, RSS growth")
    warmup_s: float = Field(
        default=60.0, ge=0, description="BENCH_WARMUP_S: soak warm-up excluded from growth"
    )
    think_ms: float = Field(default=100.0, ge=0, description="BENCH_THINK_MS: offer -> accept")
    handle_ms: float = Field(default=500.0, ge=0, description="BENCH_HANDLE_MS: assigned -> complete")
    grace_s: float = Field(
        default=5.0, ge=0, description="BENCH_GRACE_S: wait for offers after the last send"
    )
    max_inflight: int = Field(default=1000, ge=1, description="BENCH_MAX_INFLIGHT: bound on open requests")
    timeout_s: float = Field(default=10.0, gt=0, description="BENCH_TIMEOUT_S: per webhook")
    ceiling_s: float = Field(default=10.0, ge=0, description="BENCH_CEILING_S: budget (5 steps); 0 skips it")
    ceiling_concurrency: int = Field(
        default=16,
        ge=1,
        le=512,
        description="BENCH_CEILING_CONCURRENCY: the first step, doubled while it pays",
    )
    seed: int = Field(default=1, description="BENCH_SEED: the arrival plan's random seed")
    log_level: str = Field(default="WARNING", description="BENCH_LOG_LEVEL: the services' LOG_LEVEL")
    out_dir: Path = Field(default=ROOT / "bench" / "results", description="BENCH_OUT: results folder")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BenchConfig:
        names = {
            "rate": "BENCH_RATE",
            "duration_s": "BENCH_DURATION",
            "agents": "BENCH_AGENTS",
            "soak": "BENCH_SOAK",
            "warmup_s": "BENCH_WARMUP_S",
            "think_ms": "BENCH_THINK_MS",
            "handle_ms": "BENCH_HANDLE_MS",
            "grace_s": "BENCH_GRACE_S",
            "max_inflight": "BENCH_MAX_INFLIGHT",
            "timeout_s": "BENCH_TIMEOUT_S",
            "ceiling_s": "BENCH_CEILING_S",
            "ceiling_concurrency": "BENCH_CEILING_CONCURRENCY",
            "seed": "BENCH_SEED",
            "log_level": "BENCH_LOG_LEVEL",
            "out_dir": "BENCH_OUT",
        }
        data: dict[str, str | float] = {f: environ[v] for f, v in names.items() if environ.get(v, "") != ""}
        if str(data.get("soak", "")).lower() in ("1", "true", "yes"):
            # A soak is long and moderate unless told otherwise: memory, not throughput, is the question.
            data.setdefault("rate", SOAK_RATE)
            data.setdefault("duration_s", SOAK_DURATION_S)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            lines = [f"  {names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()]
            raise SystemExit("invalid benchmark settings:\n" + "\n".join(lines)) from None
