"""The timing middleware: a ``Server-Timing`` header with the server's time and the database's
time and query count, the same figures in the request's log line; no query string or patient data."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from speciosa.ops.logs import JsonFormatter, RedactFilter

HEADER = re.compile(r'^app;dur=(\d+(?:\.\d+)?), db;dur=(\d+(?:\.\d+)?);desc="(\d+) queries", '
                    r'cpu;dur=(\d+(?:\.\d+)?)$')


@pytest.fixture
def request_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    logger = logging.getLogger("speciosa.request")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.mark.django_db
def test_a_page_answers_with_server_timing_matching_its_log_line(clinic, client, request_log):
    p = clinic.patient_a
    client.force_login(p.user)
    with CaptureQueriesContext(connection) as captured:
        resp = client.get(reverse("diary_today") + f"?who={p.family_name}")
    assert resp.status_code == 200
    m = HEADER.match(resp["Server-Timing"])
    assert m, resp["Server-Timing"]
    app_ms, db_ms, queries, cpu_ms = float(m[1]), float(m[2]), int(m[3]), float(m[4])
    assert queries == len(captured.captured_queries) > 0  # every query of the request, counted once
    assert 0 < db_ms <= app_ms
    assert 0 < cpu_ms <= app_ms + 1  # the thread's CPU time: at most the time it took (rounding aside)
    out = request_log.getvalue()
    line = json.loads(out.splitlines()[-1])
    assert line["path"] == "/me/diary/" and line["status"] == 200
    assert (line["duration_ms"], line["db_ms"], line["db_queries"], line["cpu_ms"]) == (app_ms, db_ms, queries, cpu_ms)
    for secret in (p.given_name, p.family_name, p.identifier, "?who="):
        assert secret not in out and secret not in resp["Server-Timing"]


@pytest.mark.django_db
def test_a_request_without_queries_counts_none_and_the_health_check_is_timed_too(client):
    resp = client.get("/health/")
    m = HEADER.match(resp["Server-Timing"])
    assert m, resp["Server-Timing"]
    assert float(m[1]) >= 0
