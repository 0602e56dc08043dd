"""``python -m omnirouter_gateway [serve|migrate]``."""

from __future__ import annotations

import os
import sys

from aiohttp import web

from omnirouter_gateway.app import MIGRATIONS, SCHEMA, build_app
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.runtime import service_main
from omnirouter_shared.settings import ServiceSettings


async def _build(settings: ServiceSettings) -> web.Application:
    assert isinstance(settings, GatewaySettings)
    return await build_app(settings)


def main(argv: list[str] | None = None) -> int:
    return service_main(
        service="channel-gateway",
        settings_cls=GatewaySettings,
        build_app=_build,
        schemas=[(SCHEMA, MIGRATIONS)],
        environ=dict(os.environ),
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
