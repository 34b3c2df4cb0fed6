"""The Celery application (``speciosa worker`` runs it; ``celery -A speciosa.celery`` too).

Configuration comes from Django's settings (``CELERY_*``, set from the environment in
:mod:`speciosa.ops.conf`). Without ``CELERY_BROKER_URL`` every task runs eagerly in the
calling process: the embedded demo and the tests need no broker.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "speciosa.settings")

app = Celery("speciosa")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.include = ["speciosa.tasks"]
