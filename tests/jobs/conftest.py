"""Real consumers (`python -m backend worker`) as subprocesses over a per-test data dir, and a real
`redis-server` on a free loopback port for the distributed tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend.config import REPO_ROOT

HEARTBEAT_TIMEOUT_S = "3"


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, every: float = 0.05, what: str = ""):
    """Poll until `predicate()` is truthy; return its value or fail the test with `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie is gone for our purposes only once reaped; check its state
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


class Lab:
    """A data dir plus the consumers started on it; `env` is what the consumers see."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.root = root
        self.env = dict(os.environ)
        self.monkeypatch = monkeypatch
        self.consumers: list[subprocess.Popen] = []
        self.setenv("FOOLING_LAB_DATA", str(root / "data"))
        self.setenv("FOOLING_LAB_MODELS", str(root / "models"))
        self.setenv("FOOLING_LAB_DEVICE", "cpu")
        self.setenv("FOOLING_LAB_HEARTBEAT_TIMEOUT", HEARTBEAT_TIMEOUT_S)
        self.setenv("FOOLING_LAB_ON_CRASH", "fail")
        self.setenv("FOOLING_LAB_GPUS", "0")  # a CPU worker unless a test announces GPUs
        self.delenv("FOOLING_LAB_QUEUE_URL")
        self.delenv("FOOLING_LAB_SHARED")
        self.delenv("CUDA_VISIBLE_DEVICES")

    def setenv(self, name: str, value: str) -> None:
        self.env[name] = value
        self.monkeypatch.setenv(name, value)

    def delenv(self, name: str) -> None:
        self.env.pop(name, None)
        self.monkeypatch.delenv(name, raising=False)

    def start_consumer(self, workers: int = 1, env: dict[str, str] | None = None) -> subprocess.Popen:
        """A consumer subprocess; `env` adds to (or overrides) the lab's variables for this one only."""
        log = open(self.root / f"consumer-{len(self.consumers)}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "worker", "--workers", str(workers), "--quiet"],
            cwd=REPO_ROOT,
            env=self.env | (env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.consumers.append(proc)
        return proc

    def consumer_output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.root.glob("consumer-*.log")))

    def stop(self) -> None:
        for proc in self.consumers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.consumers:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def lab(tmp_path, monkeypatch) -> Iterator[Lab]:
    lab = Lab(tmp_path, monkeypatch)
    yield lab
    lab.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server on a loopback port; `persistent` turns on its append-only file, so a
    stop and a start on the same port and directory bring its data back (as a restarted server would)."""

    def __init__(self, directory: Path, persistent: bool = False):
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (apt-get install redis-server; ./lab test does it)"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.binary, self.directory, self.persistent = binary, directory, persistent
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        aof = (
            ["--appendonly", "yes", "--appendfsync", "everysec"]
            if self.persistent
            else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)

        def up() -> bool:
            try:
                return bool(client.ping())
            except (redis.ConnectionError, redis.ResponseError):  # not listening yet, or loading its file
                return False

        wait_for(up, timeout=10, what="redis-server to accept connections")
        return self

    def stop(self) -> None:
        """SIGTERM: the server flushes its append-only file and exits, as on a clean restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    """A persistent redis-server the test may stop and start again (missing binary: skip locally)."""
    server = RedisServer(tmp_path, persistent=True)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def redis_url(tmp_path) -> Iterator[str]:
    """A private redis-server on loopback (missing binary: skip locally, fail in CI)."""
    server = RedisServer(tmp_path)
    try:
        yield server.start().url
    finally:
        server.stop()
