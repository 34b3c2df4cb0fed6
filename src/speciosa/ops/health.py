"""``GET /health/``: database reachable, migrations applied, task queue reachable.

No login and no patient data: the answer is three words. 200 only when every check is
``ok`` (``queue`` may also be ``eager``: no broker configured, tasks run in the web process,
as in the embedded demo); 503 otherwise, so a load balancer takes the process out of rotation.
"""

from __future__ import annotations

import logging

from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)
HEALTHY = {"database": {"ok"}, "migrations": {"ok"}, "queue": {"ok", "eager"}}


def check_database(alias: str = DEFAULT_DB_ALIAS) -> str:
    """``ok`` when ``SELECT 1`` answers, else ``unreachable``."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:  # any driver error means: not usable now
        log.warning("health: database unreachable (%s)", type(exc).__name__)
        return "unreachable"


def check_migrations(alias: str = DEFAULT_DB_ALIAS) -> str:
    """``ok`` when every migration is applied, ``pending`` when some are not."""
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connections[alias])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        log.warning("health: migrations cannot be read (%s)", type(exc).__name__)
        return "unknown"
    return "pending" if plan else "ok"


def check_queue(broker_url: str | None = None, timeout_s: float = 2.0) -> str:
    """``eager`` without a broker; else ``ok`` when the broker accepts a connection."""
    from django.conf import settings

    url = settings.CELERY_BROKER_URL if broker_url is None else broker_url
    if not url:
        return "eager"
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout_s, transport_options={
                "socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout_s)
        return "ok"
    except Exception as exc:
        log.warning("health: task queue unreachable (%s)", type(exc).__name__)
        return "unreachable"


def checks() -> dict[str, str]:
    """All three checks; the migration check is skipped when the database is down."""
    database = check_database()
    return {
        "database": database,
        "migrations": check_migrations() if database == "ok" else "unknown",
        "queue": check_queue(),
    }


def healthy(result: dict[str, str]) -> bool:
    return all(result[k] in ok for k, ok in HEALTHY.items())


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """The health endpoint (no login)."""
    result = checks()
    return JsonResponse(result, status=200 if healthy(result) else 503)
