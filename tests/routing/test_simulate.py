"""The what-if simulator: deterministic per seed, responsive to overrides, replays recordings."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from omnirouter_routing.core import derive_id
from omnirouter_routing.simulate.__main__ import build_config, main, parse_args, run
from omnirouter_shared.contracts import encode_envelope, new_envelope
from omnirouter_shared.contracts.agents import OfferAccepted, TaskCompleted
from omnirouter_shared.contracts.common import Channel
from tests.routing.factories import T0, agent, interaction

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "deploy/config/routing.yaml")
SHORT = ["--config", CONFIG, "--duration", "900", "--drain", "7200"]


def test_same_seed_same_prediction_and_another_seed_differs() -> None:
    first = run(parse_args([*SHORT, "--seed", "3"]))
    assert run(parse_args([*SHORT, "--seed", "3"])) == first
    assert run(parse_args([*SHORT, "--seed", "4"])) != first
    assert first["contacts"] > 0 and first["answered"] > 0 and first["unfinished"] == 0


def test_more_agents_improve_service_under_load() -> None:
    load = [*SHORT, "--rate", "voice=240", "--rate", "email=120", "--seed", "5"]
    few = run(parse_args([*load, "--agents", "4"]))
    many = run(parse_args([*load, "--agents", "+10"]))
    assert many["agents"] == 22 and few["agents"] == 4
    assert many["service_level"] > few["service_level"]
    assert many["abandonment_rate"] < few["abandonment_rate"]
    assert many["occupancy"] < few["occupancy"]


def test_escalate_after_shifts_every_queues_steps() -> None:
    cfg = build_config(parse_args(["--config", CONFIG, "--escalate-after", "30"]))
    assert [s.after for s in cfg.queues["billing"].escalation] == [30.0, 150.0]
    assert cfg.queues["general"].escalation[0].after == 30.0


def test_set_overrides_a_config_value() -> None:
    cfg = build_config(
        parse_args(["--config", CONFIG, "--set", "queues.billing.priority=9", "--offer-timeout", "12"])
    )
    assert cfg.queues["billing"].priority == 9 and cfg.timers.offer_timeout == 12


def test_replay_of_a_recording(tmp_path: Path) -> None:
    recording = tmp_path / "inbox.jsonl"
    lines = [encode_envelope(new_envelope(agent("rec-1"), producer="presence", occurred_at=T0))]
    for i in range(6):
        when = T0 + timedelta(seconds=30 * i)
        contact = interaction(f"c{i}", f"i{i}", channel=Channel.SMS, when=when)
        lines.append(encode_envelope(new_envelope(contact, producer="identity", occurred_at=when)))
        task_id = derive_id("task", f"i{i}")
        accepted = OfferAccepted(offer_id="o", task_id=task_id, agent_id="rec-1")
        done = TaskCompleted(task_id=task_id, agent_id="rec-1")
        lines.append(encode_envelope(new_envelope(accepted, producer="presence", occurred_at=when)))
        lines.append(
            encode_envelope(new_envelope(done, producer="presence", occurred_at=when + timedelta(seconds=90)))
        )
    recording.write_bytes(b"\n".join(lines) + b"\n")
    result = run(
        parse_args(["--config", CONFIG, "--replay", str(recording), "--agents", "+1", "--seed", "2"])
    )
    assert result["contacts"] == 6 and result["agents"] == 2
    assert result["answered"] == 6 and result["unfinished"] == 0


def test_bad_arguments_exit_2_with_a_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([*SHORT, "--rate", "fax=3"]) == 2
    assert "--rate" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("queues: {default: {priority: high}}\n")
    assert main(["--config", str(bad)]) == 2
    assert "queues.default.priority" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["--config", CONFIG, "--replay", str(empty)]) == 2


def test_prints_a_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SHORT, "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "service level" in out and "occupancy" in out and "billing" in out


def test_prediction_does_not_depend_on_the_hash_seed() -> None:
    """Separate processes with different PYTHONHASHSEED: no set or dict order leaks into decisions."""
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        cmd = [sys.executable, "-m", "omnirouter_routing.simulate", *SHORT, "--rate", "voice=300", "--json"]
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, check=True, timeout=60)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and b"service_level" in outputs[0]
