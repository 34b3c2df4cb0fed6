"""Research tests: a fast password hasher (the shared fixtures create several logins) and
an empty cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """The research page caches its analysis; every test starts without it."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
