"""Fixtures for the deployment tests: the chart rendered per values profile, and the topic registry.

Runs in .venv-deploy (helm-python-sdk, kubernetes-validate, jsonschema), never in the app's venv.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "tools"))
sys.path.insert(0, str(ROOT / "shared"))

import render  # noqa: E402

Objects = list[dict[str, Any]]
PROFILES = render.profiles()


@pytest.fixture(scope="session")
def render_values() -> Callable[[dict[str, Any]], Objects]:
    return render.render_profile


@pytest.fixture(scope="session", params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest) -> tuple[str, Objects]:
    name = str(request.param)
    return name, render.render_profile(PROFILES[name])


@pytest.fixture(scope="session")
def objects(profile: tuple[str, Objects]) -> Objects:
    return profile[1]


@pytest.fixture(scope="session")
def production() -> Objects:
    return render.render_profile(PROFILES["production"])


@pytest.fixture(scope="session")
def default() -> Objects:
    return render.render_profile(PROFILES["default"])
