"""``python -m omnirouter_gateway [serve|migrate]``."""

from __future__ import annotations

import os
import sys

from omnirouter_gateway.app import MIGRATIONS, SCHEMA, build_app
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.runtime import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        service="channel-gateway",
        settings_cls=GatewaySettings,
        build_app=build_app,
        schemas=[(SCHEMA, MIGRATIONS)],
        environ=dict(os.environ),
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
