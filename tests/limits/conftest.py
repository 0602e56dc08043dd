from __future__ import annotations

from tests.routing.integration.conftest import decisions, inbox, routing_db

__all__ = ["decisions", "inbox", "routing_db"]
