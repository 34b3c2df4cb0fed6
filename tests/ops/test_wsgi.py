"""The WSGI entry point: the URL configuration is loaded at start-up and what was loaded is
frozen out of the garbage collector (no full collection walks Django and the apps again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import gc, json, sys
import speciosa.wsgi
print(json.dumps({"frozen": gc.get_freeze_count(), "views": "speciosa.web.views" in sys.modules}))
"""


def test_the_wsgi_application_loads_its_urls_and_freezes_what_it_loaded(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"DJANGO_SETTINGS_MODULE": "speciosa.settings", "SPECIOSA_DEBUG": "1",
                "SPECIOSA_DATA_DIR": str(tmp_path)})
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["views"]  # the URL conf (and the views behind it) loaded before the freeze
    # Django and the apps: far more than a bare interpreter's few thousand objects
    assert facts["frozen"] > 50_000
