import pytest


@pytest.fixture(autouse=True)
def _default_templates(request):
    """The shipped templates: migration 0002 adds them, but a transactional test (the
    browser's live server) empties every table after it."""
    if "db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("db")
        from speciosa.schedules import defaults

        defaults.ensure()
