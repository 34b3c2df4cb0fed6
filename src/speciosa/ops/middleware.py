"""One structured log line per request: method, path (no query string), status, time, user id."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

log = logging.getLogger("speciosa.request")


class RequestLogMiddleware:
    """Log each request after it is answered; the health check logs at DEBUG only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        user = getattr(request, "user", None)
        level = logging.DEBUG if request.path == "/health/" else logging.INFO
        log.log(level, "%s %s %s", request.method, request.path, response.status_code, extra={
            "method": request.method, "path": request.path, "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "user_id": user.pk if getattr(user, "is_authenticated", False) else None,
        })
        return response
