"""A task for the worker test: fails on its first attempt, then succeeds (loaded by the worker
with ``--include celery_probe``). Its effect is counted in Redis, so the test sees how often
it ran and how often it took effect."""

from __future__ import annotations

import os

import redis

from speciosa.celery import app


@app.task(name="celery_probe.flaky", bind=True, autoretry_for=(ConnectionError,), retry_backoff=1,
          retry_jitter=False, max_retries=3, acks_late=True)
def flaky(self, key: str) -> None:
    r = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    if r.incr(f"{key}:attempts") == 1:
        raise ConnectionError("the first attempt fails, as a mail server might")
    r.set(f"{key}:done", self.request.id, nx=True)  # idempotent effect: once per task
    r.incr(f"{key}:effects")
