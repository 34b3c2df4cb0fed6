"""The browser fixtures of ``tests/browser/conftest.py`` (chromium, 1280 px desktop, 360 px
phone, ``log_in``), loaded by path so the report tests reuse them instead of copying them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "browser" / "conftest.py"
_spec = importlib.util.spec_from_file_location("speciosa_tests_browser_conftest", _path)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

browser = _module.browser
desktop = _module.desktop
phone = _module.phone
log_in = _module.log_in
