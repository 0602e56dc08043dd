"""Configuration: validation errors name the bad field's path; the example file loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnirouter_routing.config import ConfigError, load_config, parse_config
from omnirouter_shared.contracts.common import Channel

ROOT = Path(__file__).resolve().parents[2]


def test_example_configuration_loads() -> None:
    cfg = load_config(ROOT / "deploy/config/routing.yaml")
    assert cfg.default_queue == "general"
    assert cfg.capacity.weight(Channel.EMAIL) == 12
    assert cfg.queues["billing"].escalation[1].overflow_to == "general"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"queues": {"default": {"priority": "high"}}}, "queues.default.priority"),
        ({"queues": {"default": {"escalation": [{"after": -1}]}}}, "queues.default.escalation.0.after"),
        ({"queues": {"default": {"strategy": "random"}}}, "queues.default.strategy"),
        ({"queues": {"default": {"required_skills": {"x": 11}}}}, "queues.default.required_skills.x"),
        (
            {"queues": {"default": {"business_hours": {"timezone": "Mars/Olympus"}}}},
            "queues.default.business_hours.timezone",
        ),
        (
            {"queues": {"default": {"business_hours": {"weekly": {"mon": ["9-5"]}}}}},
            "queues.default.business_hours.weekly",
        ),
        (
            {"queues": {"default": {"escalation": [{"after": 5, "overflow_to": "nowhere"}]}}},
            "queues.default.escalation.0.overflow_to",
        ),
        ({"intents": [{"name": "x", "languages": {"en": {"regex": ["("]}}}]}, "intents.0.languages.en.regex"),
        ({"default_queue": "missing"}, "default_queue"),
        ({"capacity": {"weights": {"fax": 3}}}, "capacity.weights.fax"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_errors_name_the_path_of_the_bad_field(data: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, "test.yaml")
    assert any(p.startswith(path) or f" {path}:" in p or path in p for p in err.value.problems), (
        err.value.problems
    )
    assert "test.yaml" in str(err.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("queues: [unclosed")
    with pytest.raises(ConfigError, match="<yaml>"):
        load_config(bad)


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    cfg = load_config(empty)
    assert list(cfg.queues) == ["default"] and cfg.conversation_windows[Channel.EMAIL] == 3 * 86400
