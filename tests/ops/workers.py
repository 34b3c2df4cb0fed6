"""Real Celery workers for the tests that need one: a Redis database of the test's own (skipped,
saying why, when Redis is not reachable) and a ``speciosa worker`` process on a queue of the
test's own, stopped whatever happens.

Each test file keeps its own Redis database number, so that one flushing its database never
empties another's queue while that test waits on it (another pytest run may be using it).
"""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest

from .conftest import BIN


def redis_or_skip(url: str):
    """A client of the Redis database at ``url``, or the test skipped if it does not answer."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {url}: {exc}")
    return client


def flushed_redis(url: str):
    """A fixture: the Redis database at ``url``, emptied before and after the test."""

    @pytest.fixture
    def fixture():
        client = redis_or_skip(url)
        client.flushdb()
        yield client
        client.flushdb()

    return fixture


class Worker:
    """``speciosa worker`` (one process, ``--pool=solo``) consuming ``queue``; ``env`` is the
    whole environment it runs with (its broker and database among it). Its output is read as
    it comes (``lines``; ``ready`` is set at Celery's " ready." line, logged at INFO)."""

    def __init__(self, env: dict[str, str], queue: str, *, name: str | None = None,
                 loglevel: str = "WARNING", extra: tuple[str, ...] = ()) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        args = [str(BIN / "speciosa"), "worker", "--loglevel", loglevel, "--", "--pool=solo",
                "-Q", queue, *extra, "--without-gossip", "--without-mingle", "--without-heartbeat"]
        if name:
            args[-3:-3] = ["-n", f"{name}@%h"]
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if " ready." in line:
                self.ready.set()

    def output(self) -> str:
        return "".join(self.lines)

    def assert_running(self) -> None:
        assert self.proc.poll() is None, "the worker exited:\n" + self.output()

    def terminate(self) -> None:
        """SIGTERM (a warm shutdown: the task at hand is finished), without waiting."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> str:
        """SIGTERM, then up to 15 s for it to finish (killed after that); its whole output."""
        self.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        return self.output()
