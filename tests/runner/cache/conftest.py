"""A real redis-server for the cache tests, started once per session on a free local port.

``redis_url`` gives each test an empty database on it. The server is spoken to over a raw
socket here, so the fixture does not depend on the client library the store is built on.
A missing ``redis-server`` fails the tests: CI must notice when its install step is gone.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0
# No snapshots, no append-only file: the server keeps nothing once it stops.
_EPHEMERAL = ("--save", "", "--appendonly", "no", "--dir")


@dataclass(frozen=True)
class RedisServer:
    """A running redis-server: where it listens and the URL of its database 0."""

    port: int
    url: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_command(port: int, *args: str, timeout: float = 1.0) -> bytes:
    """Send one command in RESP and return the first line of the reply (e.g. ``+PONG``)."""
    request = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg.encode()
        request += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(request)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.strip()


def _answers_ping(port: int) -> bool:
    try:
        return redis_command(port, "PING", timeout=0.5) == b"+PONG"
    except OSError:
        return False


def _start(executable: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server and wait until it answers PING; retry if another process took the port."""
    log = workdir / "redis.log"
    last_error = ""
    for _ in range(3):
        port = _free_port()
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [executable, "--port", str(port), "--bind", "127.0.0.1", *_EPHEMERAL, str(workdir)],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _answers_ping(port):
                return process, port
            time.sleep(0.02)  # a polling interval under a deadline, not a wait for an event
        _stop(process)
        last_error = log.read_text(errors="replace")[-2000:]
    pytest.fail(f"redis-server did not start on 127.0.0.1; its log ends with:\n{last_error}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session, bound to 127.0.0.1 and keeping nothing on disk."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(
            "redis-server is not on PATH. The Redis cache store is tested against a real "
            "server: install it (apt-get install -y redis-server; scripts/test.sh does this).",
            pytrace=False,
        )
    process, port = _start(executable, tmp_path_factory.mktemp("redis-server"))
    try:
        yield RedisServer(port=port, url=f"redis://127.0.0.1:{port}/0")
    finally:
        _stop(process)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an emptied database 0 on the session's redis-server."""
    assert redis_command(redis_server.port, "FLUSHALL") == b"+OK"
    return redis_server.url
