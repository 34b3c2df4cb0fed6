"""Django settings. Configuration comes only from environment variables (see docs/configuration.md).

- ``DATABASE_URL``: PostgreSQL in production (``postgres://user@host:5432/name``); unset means
  the embedded SQLite database at ``$SPECIOSA_DATA_DIR/speciosa.sqlite3`` (WAL, foreign keys on).
- ``SPECIOSA_SECRET_KEY``: required when ``SPECIOSA_DEBUG`` is off.
- ``SPECIOSA_DEBUG``: ``1`` for development (the demo sets it).
- ``SPECIOSA_ALLOWED_HOSTS``: comma-separated host names.
- ``SPECIOSA_DATA_DIR``: where the embedded database lives (default ``./var``).
- ``SPECIOSA_TIME_ZONE``: the clinic's time zone for display (default ``UTC``).
- Security (see docs/security.md): ``SPECIOSA_SSL_REDIRECT``, ``SPECIOSA_HSTS_SECONDS``,
  ``SPECIOSA_HSTS_PRELOAD``, ``SPECIOSA_BEHIND_PROXY``, ``SPECIOSA_STAFF_SESSION_MINUTES``,
  ``SPECIOSA_PATIENT_SESSION_MINUTES``, ``SPECIOSA_LOCKOUT_FAILURES``, ``SPECIOSA_LOCKOUT_MINUTES``,
  ``SPECIOSA_STAFF_TOKEN_HOURS``, ``SPECIOSA_PATIENT_TOKEN_DAYS``, ``SPECIOSA_LOCKOUT_MAX_MINUTES``,
  ``SPECIOSA_LOCKOUT_MEMORY_HOURS``, ``SPECIOSA_TRUSTED_PROXIES``, ``SPECIOSA_CACHE_URL``,
  ``SPECIOSA_LOGIN_ADDRESS_RATE``, ``SPECIOSA_PASSWORD_RESET_RATE``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("SPECIOSA_DATA_DIR", Path.cwd() / "var"))

DEBUG = os.environ.get("SPECIOSA_DEBUG", "0") == "1"
# Under pytest (which sets PYTEST_VERSION) the production-only transport settings stay off,
# because the test client and the live test server speak plain HTTP.
TESTING = "PYTEST_VERSION" in os.environ
DEVELOPMENT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("SPECIOSA_SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SPECIOSA_SECRET_KEY is not set. Production needs a long random secret key, e.g. "
            "SPECIOSA_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))'); "
            "for development set SPECIOSA_DEBUG=1 instead (see docs/configuration.md).")
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
ALLOWED_HOSTS = [h for h in os.environ.get("SPECIOSA_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
# The key of the HMAC that anchors the audit chain's head (speciosa.clinic.auditchain): someone
# who can rewrite the audit table but does not know it cannot make `speciosa audit verify`
# pass. Keep it out of the database; by default it is derived from SECRET_KEY (so rotating
# SECRET_KEY then needs `speciosa audit verify` to be re-anchored: set this one explicitly).
AUDIT_HMAC_KEY = os.environ.get("SPECIOSA_AUDIT_HMAC_KEY", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens hashed at rest, with expiry (speciosa.api.tokens)
    "oauth2_provider",  # SMART on FHIR: OAuth 2.0 authorization server (speciosa.interop.smart)
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "drf_spectacular",
    "speciosa.clinic",
    "speciosa.web",
    "speciosa.research",
    "speciosa.interop",
    "speciosa.education",
    "speciosa.messaging",
    "speciosa.schedules",
    "speciosa.reminders",
    "speciosa.reports",
    "speciosa.ops",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # bearer credentials first; the session last, refused until its second factor is done
        # (speciosa.api.authentication: the hook for a later OAuth/SMART backend)
        "speciosa.api.authentication.ApiTokenAuthentication",
        "speciosa.api.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only, nesting capped (speciosa.api.parsers): a deep document is a 400, not a 500
    "DEFAULT_PARSER_CLASSES": ["speciosa.api.parsers.SafeJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Speciosa API",
    "DESCRIPTION": "Supervised recovery when a patient uses kratom. Not a medical device.",
    "VERSION": "1",
    # one name per choice set: several components have a field called "kind"
    "ENUM_NAME_OVERRIDES": {"AssessmentKindEnum": [("assessment", "assessment")]},
}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "speciosa.ops.middleware.RequestLogMiddleware",  # one JSON line per request, no query string
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # the login's language, else the browser's (speciosa.web.middleware; docs/translation.md)
    "speciosa.web.middleware.UserLanguageMiddleware",
    "speciosa.web.middleware.NoStoreMiddleware",  # Cache-Control: no-store for patient data
    "speciosa.web.middleware.PlainNotFoundMiddleware",  # no URL list on a debug 404 (the demo)
    "django_otp.middleware.OTPMiddleware",
    "speciosa.web.security.SessionPolicyMiddleware",
    "speciosa.web.security.SecondFactorMiddleware",
    "speciosa.web.middleware.SiteTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
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
                "django.template.context_processors.i18n",  # LANGUAGE_CODE for <html lang>
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "speciosa.web.context_processors.urgent_alerts",
                "speciosa.web.context_processors.credential_notices",
                "speciosa.web.context_processors.staff_role",
                "speciosa.web.context_processors.unread_messages",
                "speciosa.web.context_processors.offline_app",
                "speciosa.web.context_processors.translation_status",
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
# NIST SP 800-63B-4: at least 15 characters (a patient's password may be their only factor),
# a check against a list of commonly used and breached passwords, no composition rules, no
# forced rotation. See docs/security.md.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 15}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    # not a rule: Django calls its password_changed() after any password change (the password
    # page, the admin, `manage changepassword`), which revokes the user's API tokens
    {"NAME": "speciosa.api.tokens.RevokeTokensOnPasswordChange"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # older hashes still verify, and are upgraded to Argon2 at the next login
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTHENTICATION_BACKENDS = [
    # first: django-axes refuses a username + address that must wait (speciosa.web.security)
    "speciosa.web.security.LoginAttemptBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("SPECIOSA_TIME_ZONE", "UTC")
USE_I18N = True
# The languages of the pages (docs/translation.md). A login's own choice (Profile.language)
# wins; without one, the browser's Accept-Language among these; else English. Each language
# is named in itself, as the patient who reads it would look for it.
LANGUAGES = [
    ("en", "English"),
    ("es", "Español"),
    ("th", "ไทย"),
]
# The message catalogues (django.po for pages and e-mails, djangojs.po for the scripts), built
# into .mo files by `speciosa translations compile` (make install runs it).
LOCALE_PATHS = [BASE_DIR / "locale"]
# Date, time and date-time boxes take and show ISO 8601 in every language (the browser's
# own boxes read nothing else): speciosa/formats puts it first in es and th (docs/translation.md)
FORMAT_MODULE_PATH = ["speciosa.formats"]
# The languages whose page translations a fluent clinical reader has reviewed; every other
# one is a draft, and its pages say so (docs/translation.md). None yet.
TRANSLATIONS_REVIEWED: list[str] = []
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Static files are served by WhiteNoise from the installed apps (no collectstatic step needed
# for the embedded demo); production may run `speciosa manage collectstatic` as well.
WHITENOISE_USE_FINDERS = True
# Noto Sans Thai, kept once for the PDF report (speciosa/reports/fonts), is also the pages'
# Thai font (speciosa.css @font-face): served as static/speciosa/fonts/
STATICFILES_DIRS = [("speciosa/fonts", BASE_DIR / "reports" / "fonts")]
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

# --------------------------------------------------------------------------- security
# (docs/security.md) Transport settings are on in production (SPECIOSA_DEBUG off, not
# under pytest) and can be switched off one by one.


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw in (None, "") else raw.strip().lower() in ("1", "true", "yes", "on")


PRODUCTION = not DEBUG and not TESTING
SECURE_SSL_REDIRECT = _env_flag("SPECIOSA_SSL_REDIRECT", PRODUCTION)
# HSTS is only ever sent on HTTPS responses (Django's SecurityMiddleware); one year by default.
SECURE_HSTS_SECONDS = int(os.environ.get("SPECIOSA_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = _env_flag("SPECIOSA_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = PRODUCTION
# the language a login chose, kept for the login page after log out (docs/translation.md)
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
if _env_flag("SPECIOSA_BEHIND_PROXY", False):
    # only behind a proxy that sets this header itself (and strips it from clients)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Sessions end after inactivity (speciosa.web.security.SessionPolicyMiddleware).
STAFF_SESSION_MINUTES = int(os.environ.get("SPECIOSA_STAFF_SESSION_MINUTES", "30"))
PATIENT_SESSION_MINUTES = int(os.environ.get("SPECIOSA_PATIENT_SESSION_MINUTES", str(12 * 60)))
SESSION_COOKIE_AGE = PATIENT_SESSION_MINUTES * 60

# The patient's app offline (docs/offline.md): the service worker keeps the last copy of the
# patient's own pages (diary form, charts, education) on the phone this many days at most, and
# deletes them at log out. Diaries written offline wait on the phone until the server has them.
OFFLINE_DAYS = float(os.environ.get("SPECIOSA_OFFLINE_DAYS", "7"))

# API tokens (django-rest-knox, speciosa.api.tokens): hashed at rest, one per login of a program,
# expiring. Staff tokens live a working shift (a token on a shared clinic machine carries a
# clinician's reach over many patients); a patient's phone app keeps its token a month (it
# reaches one record, and logging in again on a phone is where patients give up).
STAFF_TOKEN_HOURS = float(os.environ.get("SPECIOSA_STAFF_TOKEN_HOURS", "8"))
PATIENT_TOKEN_DAYS = float(os.environ.get("SPECIOSA_PATIENT_TOKEN_DAYS", "30"))
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",  # the header stays ``Authorization: Token <key>``
    "TOKEN_TTL": dt.timedelta(hours=STAFF_TOKEN_HOURS),  # each token gets its own (tokens.py)
    "AUTO_REFRESH": False,  # a token ends when it was issued to end, however busy
}

# The client's address (speciosa.web.security.client_ip): REMOTE_ADDR, unless the request came
# from one of these reverse proxies (addresses or networks, comma-separated; default none), whose
# X-Forwarded-For is then read from the right, past the trusted proxies. A client elsewhere
# cannot choose its address by sending the header.
TRUSTED_PROXIES = [p.strip() for p in os.environ.get("SPECIOSA_TRUSTED_PROXIES", "").split(",")
                   if p.strip()]

# Throttle counts live in the cache: one shared Redis in production (SPECIOSA_CACHE_URL=
# redis://host:6379/1), so that every worker process counts the same guesses; the embedded
# default is this process's memory.
CACHE_URL = os.environ.get("SPECIOSA_CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CACHE_URL}}
elif CACHE_URL in ("", "locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"SPECIOSA_CACHE_URL must be redis://…, rediss://… or locmem://, "
                               f"not {CACHE_URL!r} (see docs/configuration.md).")
# Logins (web form and token endpoint) per client address, whatever the username.
LOGIN_ADDRESS_RATE = os.environ.get("SPECIOSA_LOGIN_ADDRESS_RATE", "30/minute")
# "Forgot password" links asked for, per client address and per e-mail address each
# (speciosa.web.password_views).
PASSWORD_RESET_RATE = os.environ.get("SPECIOSA_PASSWORD_RESET_RATE", "5/hour")
# A new patient's one-time set-up link works this long (speciosa.clinic.onboarding).
SETUP_LINK_HOURS = float(os.environ.get("SPECIOSA_SETUP_LINK_HOURS", "72"))

# django-axes: failed logins count per username *and* address together, so nobody can lock
# another person out from elsewhere. After SPECIOSA_LOCKOUT_FAILURES failures that pair waits
# SPECIOSA_LOCKOUT_MINUTES, and each further failure within SPECIOSA_LOCKOUT_MEMORY_HOURS
# doubles the wait, up to SPECIOSA_LOCKOUT_MAX_MINUTES (speciosa.web.security.lockout_wait).
AXES_FAILURE_LIMIT = int(os.environ.get("SPECIOSA_LOCKOUT_FAILURES", "5"))
LOCKOUT_MINUTES = float(os.environ.get("SPECIOSA_LOCKOUT_MINUTES", "1"))
LOCKOUT_MAX_MINUTES = float(os.environ.get("SPECIOSA_LOCKOUT_MAX_MINUTES", str(24 * 60)))
LOCKOUT_MEMORY_HOURS = float(os.environ.get("SPECIOSA_LOCKOUT_MEMORY_HOURS", "24"))
AXES_COOLOFF_TIME = "speciosa.web.security.lockout_wait"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "speciosa.web.security.client_ip"
# each attempt record expires on its own (speciosa.web.security.on_login_failed keeps it as
# long as its wait), not when some other login's shorter wait ends
AXES_USE_ATTEMPT_EXPIRATION = True
# a try while waiting is refused and not counted: the wait does not grow by itself
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "speciosa.web.security.lockout_response"
AXES_ENABLE_ADMIN = False  # a read-only list instead (speciosa.web.admin)
AXES_VERBOSE = False

# django-otp: the issuer shown in authenticator apps.
OTP_TOTP_ISSUER = "Speciosa"

# django-csp 4: no inline scripts or styles, nothing from other origins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# Research exports (docs/research.md): every exported patient shares site, sex, age band,
# entry year and pregnancy status with at least K - 1 others; at most MAX_SUPPRESSED of the
# consented patients may be left out instead of generalising further; each patient's most
# recent 0..WITHHELD_DAYS days (keyed) are not exported.
RESEARCH_K_ANONYMITY = int(os.environ.get("SPECIOSA_RESEARCH_K", "5"))
RESEARCH_MAX_SUPPRESSED = float(os.environ.get("SPECIOSA_RESEARCH_MAX_SUPPRESSED", "0.1"))
RESEARCH_WITHHELD_DAYS = int(os.environ.get("SPECIOSA_RESEARCH_WITHHELD_DAYS", "28"))
# The site's research secret: SPECIOSA_RESEARCH_KEY, or else this file (``speciosa demo``
# writes a random one for the demo clinic; a real site keeps it with its other secrets).
RESEARCH_KEY_FILE = Path(os.environ.get("SPECIOSA_RESEARCH_KEY_FILE", DATA_DIR / "research-key"))
# Compute the research page's analysis in a background thread when there is no task queue
# (``speciosa serve`` turns it on; with a broker the worker computes it).
RESEARCH_ANALYSIS_BACKGROUND = os.environ.get("SPECIOSA_RESEARCH_ANALYSIS_BACKGROUND", "") == "1"
# Research exports made on the research page: their zip files, and how long they are kept.
RESEARCH_EXPORT_DIR = Path(os.environ.get("SPECIOSA_RESEARCH_EXPORT_DIR", DATA_DIR / "research-exports"))
RESEARCH_EXPORT_HOURS = float(os.environ.get("SPECIOSA_RESEARCH_EXPORT_HOURS", "24"))
# Clinical dates are accepted from this many days before the patient's entry into care up to
# now (speciosa.clinic.writes.in_window): a dose dated 1900 or a diary day of 0001-01-01 is
# refused with a message instead of slowing every chart or breaking the research export.
DAYS_BEFORE_CARE = int(os.environ.get("SPECIOSA_DAYS_BEFORE_CARE", "365"))
# The diary a patient can trust (issue 15): a patient corrects or removes their own diary
# entries of today and of this many days before (0: today only); older ones their care team
# corrects. Per-dose plausibility limits, by unit, above which an amount needs a confirmation
# (defaults and their reasons: speciosa.pharmacology.doses.PLAUSIBLE_PER_DOSE), e.g.
# SPECIOSA_DOSE_PLAUSIBLE_MAX="g=60,capsule=120".
DIARY_CORRECTION_DAYS = int(os.environ.get("SPECIOSA_DIARY_CORRECTION_DAYS", "2"))
#: the units a limit may be set for (speciosa.pharmacology.doses.PLAUSIBLE_PER_DOSE's keys)
DOSE_PLAUSIBLE_UNITS = ("g", "capsule", "glass", "mg_extract", "mg_mitragynine", "mg_7oh")


def _dose_limits(text: str) -> dict[str, float]:
    """``"g=60,capsule=120"`` as limits by unit. A unit misspelt ("grams=60") was ignored
    without a word, "g=nan" made every diary save fail and "g=abc" stopped the server with a
    bare ValueError: each is refused at start, naming the variable and what it takes."""
    import math

    from django.core.exceptions import ImproperlyConfigured

    limits: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        unit, _, value = (x.strip() for x in part.partition("="))
        try:
            limit = float(value)
        except ValueError:
            limit = math.nan
        if unit not in DOSE_PLAUSIBLE_UNITS or not (math.isfinite(limit) and limit > 0):
            raise ImproperlyConfigured(
                f"SPECIOSA_DOSE_PLAUSIBLE_MAX: {part!r} is not unit=limit, with a unit of "
                f"{', '.join(DOSE_PLAUSIBLE_UNITS)} and a positive number (e.g. g=60,capsule=120).")
        limits[unit] = limit
    return limits


DOSE_PLAUSIBLE_MAX = _dose_limits(os.environ.get("SPECIOSA_DOSE_PLAUSIBLE_MAX", ""))

# SMART on FHIR (speciosa.interop.smart, docs/interop.md): django-oauth-toolkit as the
# authorization server. Access tokens live an hour; PKCE with S256 is required of every client
# ("plain" is refused); the ID token (openid fhirUser) is signed with the key in
# SPECIOSA_OIDC_KEY_FILE (PEM), made once in the data folder when the variable is unset.
SMART_TOKEN_SECONDS = int(os.environ.get("SPECIOSA_SMART_TOKEN_SECONDS", "3600"))
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "speciosa.interop.smart.SmartValidator",
    "SCOPES_BACKEND_CLASS": "speciosa.interop.smart.SmartScopes",
    "ACCESS_TOKEN_EXPIRE_SECONDS": SMART_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": int(os.environ.get("SPECIOSA_SMART_REFRESH_DAYS", "30")) * 86400,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "PKCE_REQUIRED": True,
    # RFC 9700 (OAuth 2.0 Security BCP), every gate of django-oauth-toolkit on: PKCE "plain"
    # refused (S256 only), no implicit or password grant, no token in a URL, `iss` in the
    # authorization response, tokens stored hashed, a replayed refresh token revokes its family
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ROTATE_REFRESH_TOKEN": True,
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": "",  # set below from the key file
    "REQUEST_APPROVAL_PROMPT": "force",
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}
# django-oauth-toolkit's own models (named, so that Speciosa's migrations can point at them)
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
# its tables in one migration of Speciosa's (see that package's docstring: 20-40 s less per
# new database)
MIGRATION_MODULES = {"oauth2_provider": "speciosa.interop.oauth_migrations"}
OIDC_KEY_FILE = Path(os.environ.get("SPECIOSA_OIDC_KEY_FILE", DATA_DIR / "oidc-key.pem"))


def _oidc_key(path: Path) -> str:
    """The PEM private key that signs ID tokens: read from ``path``, or made there once (RSA
    2048, mode 0600, written under a temporary name and renamed, so that processes starting
    together agree on one key)."""
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        pass
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # the first process to get here wins; the others read its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text(encoding="ascii")


OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"] = _oidc_key(OIDC_KEY_FILE)
# Bulk Data $export (speciosa.interop.bulk): where the NDJSON files are written, how long they
# are kept.
BULK_EXPORT_DIR = Path(os.environ.get("SPECIOSA_BULK_DIR", DATA_DIR / "bulk"))
BULK_EXPORT_HOURS = float(os.environ.get("SPECIOSA_BULK_EXPORT_HOURS", "24"))

# Operations: task queue, e-mail, structured logs (environment variables: docs/configuration.md)
from speciosa.ops.conf import *  # noqa: E402,F403
