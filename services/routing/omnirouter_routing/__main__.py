"""``omni-routing [serve|migrate]`` or ``python -m omnirouter_routing [serve|migrate]``."""

from __future__ import annotations

import os
import sys

from omnirouter_routing.app import MIGRATIONS, SCHEMA, build_app
from omnirouter_routing.config import ConfigError
from omnirouter_routing.settings import RoutingSettings
from omnirouter_shared.runtime import service_main


def main(argv: list[str] | None = None) -> int:
    try:
        return service_main(
            service="routing",
            settings_cls=RoutingSettings,
            build_app=build_app,
            schemas=[(SCHEMA, MIGRATIONS)],
            environ=dict(os.environ),
            argv=argv,
        )
    except ConfigError as exc:
        # A bad ROUTING_CONFIG at start-up: name every problem instead of a traceback.
        print(f"omni-routing: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
