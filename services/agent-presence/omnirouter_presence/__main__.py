"""``python -m omnirouter_presence [serve|migrate]``."""

from __future__ import annotations

import os
import sys

from omnirouter_presence.app import MIGRATIONS, build_app
from omnirouter_presence.repository import SCHEMA
from omnirouter_presence.settings import PresenceSettings
from omnirouter_shared.runtime import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        service="agent-presence",
        settings_cls=PresenceSettings,
        build_app=build_app,
        schemas=[(SCHEMA, MIGRATIONS)],
        environ=dict(os.environ),
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
