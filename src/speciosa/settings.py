"""Django settings. Configuration comes only from environment variables (see docs/configuration.md).

- ``DATABASE_URL``: PostgreSQL in production (``postgres://user@host:5432/name``); unset means
  the embedded SQLite database at ``$SPECIOSA_DATA_DIR/speciosa.sqlite3`` (WAL, foreign keys on).
- ``SPECIOSA_SECRET_KEY``: required when ``SPECIOSA_DEBUG`` is off.
- ``SPECIOSA_DEBUG``: ``1`` for development (the demo sets it).
- ``SPECIOSA_ALLOWED_HOSTS``: comma-separated host names.
- ``SPECIOSA_DATA_DIR``: where the embedded database lives (default ``./var``).
- ``SPECIOSA_TIME_ZONE``: the clinic's time zone for display (default ``UTC``).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("SPECIOSA_DATA_DIR", Path.cwd() / "var"))

DEBUG = os.environ.get("SPECIOSA_DEBUG", "0") == "1"
SECRET_KEY = os.environ.get("SPECIOSA_SECRET_KEY") or (
    "insecure-development-key-do-not-use-in-production" if DEBUG or os.environ.get("CI") or
    os.environ.get("PYTEST_VERSION") else ""
)
if not SECRET_KEY:
    # Tests and the demo run with DEBUG or under pytest; production must set a key.
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"
ALLOWED_HOSTS = [h for h in os.environ.get("SPECIOSA_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "speciosa.clinic",
    "speciosa.web",
    "speciosa.research",
    "speciosa.interop",
    "speciosa.education",
    "speciosa.reports",
    "speciosa.ops",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Speciosa API",
    "DESCRIPTION": "Supervised recovery when a patient uses kratom. Not a medical device.",
    "VERSION": "1",
}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "speciosa.ops.middleware.RequestLogMiddleware",  # one JSON line per request, no query string
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "speciosa.web.middleware.SiteTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "speciosa.urls"
WSGI_APPLICATION = "speciosa.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "speciosa.web.context_processors.urgent_alerts",
            ],
        },
    }
]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
    # one test database per test process, so that parallel test runs never share one
    DATABASES["default"]["TEST"] = {"NAME": f"test_speciosa_{os.getpid()}"}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "speciosa.sqlite3",
            # WAL and foreign keys: see speciosa.clinic.apps (connection_created signal).
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            # a file, not shared-cache memory, so that tests with threads lock as production does
            "TEST": {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("SPECIOSA_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Static files are served by WhiteNoise from the installed apps (no collectstatic step needed
# for the embedded demo); production may run `speciosa manage collectstatic` as well.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only file system: WhiteNoise serves from the apps
    pass
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Operations: task queue, e-mail, structured logs (environment variables: docs/configuration.md)
from speciosa.ops.conf import *  # noqa: E402,F403
