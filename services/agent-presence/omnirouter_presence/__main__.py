"""``python -m omnirouter_presence [serve|migrate]``."""

from __future__ import annotations

import os
import sys

from aiohttp import web

from omnirouter_presence.app import MIGRATIONS, build_app
from omnirouter_presence.repository import SCHEMA
from omnirouter_presence.settings import PresenceSettings
from omnirouter_shared.runtime import service_main
from omnirouter_shared.settings import ServiceSettings


async def _build(settings: ServiceSettings) -> web.Application:
    assert isinstance(settings, PresenceSettings)
    return await build_app(settings)


def main(argv: list[str] | None = None) -> int:
    return service_main(
        service="agent-presence",
        settings_cls=PresenceSettings,
        build_app=_build,
        schemas=[(SCHEMA, MIGRATIONS)],
        environ=dict(os.environ),
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
