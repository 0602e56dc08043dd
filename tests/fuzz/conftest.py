from __future__ import annotations

import pytest

# schemathesis' strategies draw from `random` (hypothesis deprecates it; the runs stay deterministic).
IGNORE = "ignore::hypothesis.errors.HypothesisDeprecationWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings(IGNORE))
