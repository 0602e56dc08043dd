"""``python -m omnirouter_identity [serve|migrate]``."""

from __future__ import annotations

import os
import sys

from omnirouter_identity.app import MIGRATIONS, SCHEMA, build_app
from omnirouter_identity.settings import IdentitySettings
from omnirouter_shared.runtime import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        service="identity-resolution",
        settings_cls=IdentitySettings,
        build_app=build_app,
        schemas=[(SCHEMA, MIGRATIONS)],
        environ=dict(os.environ),
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
