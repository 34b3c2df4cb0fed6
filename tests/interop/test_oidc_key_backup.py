"""The key that signs SMART ID tokens and ``speciosa backup`` (issue 14): the backup holds the
database only, never the OIDC private key (a backup is copied off the machine and restored
into drill databases; with the key in it, whoever holds a backup could sign ID tokens that
apps trust). The key is kept as a secret beside ``SPECIOSA_SECRET_KEY``, and the deployment
guide says so; a lost key is replaced by a new one at the next start."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

SPECIOSA = Path(sys.executable).parent / "speciosa"
DOCS = Path(__file__).resolve().parents[2] / "docs"
KEY = """
import django
django.setup()
from django.conf import settings
print(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"].splitlines()[1])
"""


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "SPECIOSA_OIDC_KEY_FILE")}
    env.update(SPECIOSA_DEBUG="1", SPECIOSA_DATA_DIR=str(data), SPECIOSA_LOG_LEVEL="WARNING",
               DJANGO_SETTINGS_MODULE="speciosa.settings")
    return env


def _run(env, *args) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_backup_never_holds_the_oidc_signing_key_and_a_lost_key_is_replaced(tmp_path):
    data = tmp_path / "data"
    env = _env(data)
    _run(env, str(SPECIOSA), "migrate")
    key_file = data / "oidc-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    pem = key_file.read_text()
    body = "".join(pem.splitlines()[1:-1])
    _run(env, str(SPECIOSA), "backup", str(tmp_path / "b.backup"))
    with tarfile.open(tmp_path / "b.backup") as tar:
        assert sorted(tar.getnames()) == ["database.sqlite3", "manifest.json"]
        blobs = b"".join(tar.extractfile(m).read() for m in tar.getmembers())
    for i in range(0, len(body) - 40, 40):  # no piece of the key, anywhere in the backup
        assert body[i:i + 40].encode() not in blobs
    # the key in use is the file's; lost, a new one is made at the next start
    assert _run(env, sys.executable, "-c", KEY).strip() == pem.splitlines()[1]
    key_file.unlink()
    assert _run(env, sys.executable, "-c", KEY).strip() != pem.splitlines()[1]
    assert key_file.read_text() != pem


def test_the_deployment_guide_says_how_the_key_is_kept():
    guide = (DOCS / "deployment.md").read_text(encoding="utf-8")
    backups = guide.split("## 6. Backups", 1)[1].split("\n## ", 1)[0]
    text = " ".join(backups.split())
    assert "SPECIOSA_OIDC_KEY_FILE" in text and "not in the backup" in text
    assert re.search(r"same (key )?file on every (app )?server", text)
    assert "keep it in backups" not in (DOCS / "fhir.md").read_text(encoding="utf-8")
