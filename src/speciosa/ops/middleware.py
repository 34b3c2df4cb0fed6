"""One structured log line per request: method, path (no query string), status, time, user id.

The same middleware times the request on the server and answers with a ``Server-Timing`` header
(``app;dur=<ms>, db;dur=<ms>;desc="<n> queries", cpu;dur=<ms>``), so a load generator can set the
server's share next to its own figures (issue 18). ``app`` is the time the request spent in the
Django process (waiting for a core included, on a busy machine), ``cpu`` the CPU time the request's
thread used in it: what the code costs, whatever else runs on the machine. The header carries
durations and a query count only: never a query string, an SQL text or anything about a patient.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from django.db import connections
from django.http import HttpRequest, HttpResponse

log = logging.getLogger("speciosa.request")


class QueryTimer:
    """A database execute wrapper that counts the queries and adds up their time."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


class RequestLogMiddleware:
    """Log each request after it is answered and add ``Server-Timing``; the health check logs at DEBUG only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        cpu_started = time.thread_time()
        queries = QueryTimer()
        with contextlib.ExitStack() as stack:
            for conn in connections.all():  # the wrapper object only; no connection is opened here
                stack.enter_context(conn.execute_wrapper(queries))
            response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        cpu_ms = round((time.thread_time() - cpu_started) * 1000, 1)
        db_ms = round(queries.seconds * 1000, 1)
        response["Server-Timing"] = (f'app;dur={duration_ms}, db;dur={db_ms};desc="{queries.count} queries", '
                                     f'cpu;dur={cpu_ms}')
        user = getattr(request, "user", None)
        level = logging.DEBUG if request.path == "/health/" else logging.INFO
        log.log(level, "%s %s %s", request.method, request.path, response.status_code, extra={
            "method": request.method, "path": request.path, "status": response.status_code,
            "duration_ms": duration_ms, "cpu_ms": cpu_ms, "db_ms": db_ms, "db_queries": queries.count,
            "user_id": user.pk if getattr(user, "is_authenticated", False) else None,
        })
        return response
