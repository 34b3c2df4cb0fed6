"""GET /health/: three words, no login, 200 only when the database, the migrations and the
task queue are all right."""

from __future__ import annotations

import pytest
from django.db import connections

from speciosa.ops import health


@pytest.mark.django_db
def test_a_healthy_embedded_app_answers_200_without_a_login(client):
    r = client.get("/health/")
    assert r.status_code == 200
    assert r.json() == {"database": "ok", "migrations": "ok", "queue": "eager"}
    assert "no-cache" in r["Cache-Control"] or "max-age=0" in r["Cache-Control"]


@pytest.mark.django_db
def test_a_pending_migration_answers_503(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    def plan(self, targets, clean_start=False):
        return [(self.loader.graph.nodes[("clinic", "0001_initial")], False)]

    monkeypatch.setattr(MigrationExecutor, "migration_plan", plan)
    r = client.get("/health/")
    assert r.status_code == 503 and r.json()["migrations"] == "pending"


@pytest.mark.django_db
def test_an_unreachable_broker_answers_503(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    r = client.get("/health/")
    assert r.status_code == 503 and r.json()["queue"] == "unreachable"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/15", "amqp://guest:guest@127.0.0.1:5672//"])
def test_a_reachable_broker_answers_ok(client, settings, url):
    if health.check_queue(url) != "ok":
        pytest.skip(f"no broker at {url} on this machine")
    settings.CELERY_BROKER_URL = url
    r = client.get("/health/")
    assert r.status_code == 200 and r.json()["queue"] == "ok"


def test_an_unreachable_database_is_reported(tmp_path):
    connections.databases["unreachable"] = dict(connections.databases["default"], ENGINE="django.db.backends.sqlite3",
                                               NAME=str(tmp_path / "no" / "such" / "folder" / "db.sqlite3"))
    try:
        assert health.check_database("unreachable") == "unreachable"
    finally:
        connections["unreachable"].close()
        del connections["unreachable"]
        del connections.databases["unreachable"]


@pytest.mark.django_db
def test_the_health_command_prints_the_same_checks(capsys):
    from speciosa.cli import main

    assert main(["health", "--json"]) == 0
    assert '"database": "ok"' in capsys.readouterr().out
