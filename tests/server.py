"""`tessera serve` as a real process for end-to-end tests: a free port on 127.0.0.1, a data
folder of its own, ready once GET /health/check answers, stopped on exit.

Also a dedicated PostgreSQL database for such a server (skipped locally without PostgreSQL,
a failure under CI=true, as in conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import POSTGRES_URL

REPO = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60


@dataclass(frozen=True)
class Server:
    """A running `tessera serve`: where it listens, its process and its data folder."""

    base_url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path

    @property
    def dicomweb_url(self) -> str:
        return f"{self.base_url}/v2"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def tessera_command() -> list[str]:
    """The installed `tessera` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "tessera"
    if script.exists():
        return [str(script)]
    found = shutil.which("tessera")
    if found:
        return [found]
    return [sys.executable, "-m", "cli.main"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(
    workdir: Path, *, database_url: str | None = None, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Start `tessera serve` with its data in `workdir/data`; yield once it is healthy."""
    data_dir = workdir / "data"
    log = workdir / "server.log"
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    environ.update({"TESSERA_FSYNC": "0", **(env or {})})
    command = [
        *tessera_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    if database_url:
        command += ["--database-url", database_url]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=environ, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, data_dir, log)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        _stop(process)


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"tessera serve exited with {server.process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.base_url}/health/check", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"tessera serve did not become healthy in {STARTUP_SECONDS} s:\n{server.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A freshly created PostgreSQL database next to POSTGRES_URL's, dropped afterwards."""
    admin = POSTGRES_URL
    try:
        asyncio.run(
            _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        )
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {admin} is required under CI: {exc}")
        pytest.skip(f"PostgreSQL at {admin} is not reachable: {exc}")
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
