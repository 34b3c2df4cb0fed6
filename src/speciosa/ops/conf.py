"""Operations settings, read from environment variables (``docs/configuration.md``).

Imported at the end of :mod:`speciosa.settings`:

- ``CELERY_BROKER_URL``: ``redis://host:6379/0`` or ``amqp://user:pass@host:5672//``. Unset
  means no broker: every task runs at once in the calling process ("eager"), as the embedded
  demo and the tests want.
- ``SPECIOSA_BASE_URL``: the public address, used for the link in urgent-alert e-mail.
- E-mail: ``EMAIL_BACKEND``, ``EMAIL_HOST``, ``EMAIL_PORT``,
  ``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS``, ``DEFAULT_FROM_EMAIL``.
- ``SPECIOSA_LOG_LEVEL`` (``INFO``) and ``SPECIOSA_LOG_FORMAT`` (``json`` or ``text``).
"""

from __future__ import annotations

import os

_env = os.environ.get

# --------------------------------------------------------------------------- task queue
CELERY_BROKER_URL = _env("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is delivered again (tasks are idempotent)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = _env("SPECIOSA_TASK_QUEUE", "speciosa")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True  # nothing reads results; no result backend needed
CELERY_TIMEZONE = "UTC"
# Redis: a task not acknowledged within this time is delivered again (longer than any task).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(_env("SPECIOSA_TASK_VISIBILITY_S", "3600"))}
CELERY_BEAT_SCHEDULE = {
    "sweep-all": {"task": "speciosa.tasks.sweep_all",
                  "schedule": float(_env("SPECIOSA_SWEEP_EVERY_S", "900"))},
    "notify-new-urgent-alerts": {"task": "speciosa.tasks.notify_new_urgent_alerts",
                                 "schedule": float(_env("SPECIOSA_NOTIFY_EVERY_S", "60"))},
    "purge-bulk-exports": {"task": "speciosa.tasks.purge_bulk_exports",
                           "schedule": float(_env("SPECIOSA_BULK_PURGE_EVERY_S", "3600"))},
    "purge-research-exports": {"task": "speciosa.tasks.purge_research_exports",
                               "schedule": float(_env("SPECIOSA_BULK_PURGE_EVERY_S", "3600"))},
    # patient reminders (speciosa.reminders): at most every 15 minutes, so that a diary
    # reminder goes out before the missed-diary alert (speciosa.reminders.timing.MAX_PERIOD)
    "send-reminders": {"task": "speciosa.tasks.send_reminders",
                       "schedule": float(_env("SPECIOSA_REMINDERS_EVERY_S", "300"))},
}

# --------------------------------------------------------------------------- reminders
# Web Push (docs/reminders.md: `speciosa reminders vapid-keys` makes the pair). The private
# key is the base64url raw key (or a PEM file's path); the public one is what browsers are
# given as applicationServerKey. Without a private key, Web Push is off (the page says so).
SPECIOSA_VAPID_PRIVATE_KEY = _env("SPECIOSA_VAPID_PRIVATE_KEY", "")
SPECIOSA_VAPID_PUBLIC_KEY = _env("SPECIOSA_VAPID_PUBLIC_KEY", "")
SPECIOSA_VAPID_SUBJECT = _env("SPECIOSA_VAPID_SUBJECT", "mailto:speciosa@localhost")
# SMS: a dotted path to a class with send(to, body) (speciosa.reminders.sms)
SPECIOSA_SMS_BACKEND = _env("SPECIOSA_SMS_BACKEND", "speciosa.reminders.sms.ConsoleBackend")
SPECIOSA_SMS_FILE_PATH = _env("SPECIOSA_SMS_FILE_PATH", "")

# --------------------------------------------------------------------------- e-mail
EMAIL_BACKEND = _env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = _env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(_env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = _env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env("EMAIL_USE_TLS", "0") == "1"
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = _env("DEFAULT_FROM_EMAIL", "speciosa@localhost")
SPECIOSA_BASE_URL = _env("SPECIOSA_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# --------------------------------------------------------------------------- logs
_LEVEL = _env("SPECIOSA_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_phi": {"()": "speciosa.ops.logs.RedactFilter"}},
    "formatters": {
        "json": {"()": "speciosa.ops.logs.JsonFormatter"},
        "text": {"()": "speciosa.ops.logs.TextFormatter"},
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                   "formatter": _env("SPECIOSA_LOG_FORMAT", "json"), "filters": ["no_phi"]},
    },
    "root": {"handlers": ["stdout"], "level": _LEVEL},
    "loggers": {
        # our own request log (speciosa.ops.middleware) replaces these two, which print
        # the request line with its query string
        "django.server": {"handlers": [], "level": "ERROR", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "ERROR", "propagate": False},
        "django.request": {"level": "ERROR"},
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": _LEVEL},
    },
}

# --------------------------------------------------------------------------- health
# A load balancer probes /health/ over plain HTTP on the private network: no HTTPS redirect.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
