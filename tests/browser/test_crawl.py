"""Issue 15, item 2: every page each demo role reaches, on a 360 px phone, with no console
error (a script or style the Content-Security-Policy blocks, a missing favicon, a failed
request) and no sideways scrolling (``scrollWidth <= innerWidth``).

The crawl starts at the role's start page and a few pages named in the issue, follows every
link on the site (one page per URL shape: ``/patients/12/`` stands for every patient), and
reports every problem at once. Django's admin, the API and the FHIR endpoints are not pages
of Speciosa's own and are left out."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SKIP = ("/logout/", "/admin/", "/api/", "/fhir/", "/static/", "/health/")
PAGES_PER_ROLE = 45
ROLES = {
    # login, pages named in the issue that the crawl must see even if no link leads there
    "patient": ("patient01", ["/", "/me/", "/me/diary/", "/learn/", "/account/security/",
                              "/account/password/"]),
    "clinician": ("dr.okafor", ["/", "/patients/", "/worklist/", "/evidence/",
                                "/account/second-factor/setup/", "/account/security/",
                                "/account/password/", "/patients/?q=zzzz-no-such-name"]),
    "researcher": ("researcher", ["/", "/research/", "/research/exports/", "/account/security/",
                                  "/account/second-factor/setup/"]),
    "admin": ("admin", ["/", "/safety-settings/", "/account/security/"]),
}


@pytest.fixture
def demo_clinic(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from speciosa.demo import build_demo_clinic

    return build_demo_clinic(seed=7, n_patients=6, days=40, today=dt.date.today())


def shape(path: str) -> str:
    return re.sub(r"\d+", "N", path)


def crawl(page, base: str, start: list[str]) -> tuple[list[str], list[str]]:
    """Visit pages breadth-first from ``start``; the pages seen and the problems found."""
    problems: list[str] = []
    current = {"path": ""}
    page.on("console", lambda m: problems.append(f"{current['path']}: console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{current['path']}: script error: {e}"))
    queue, seen, visited = list(start), set(), []
    while queue and len(visited) < PAGES_PER_ROLE:
        path = queue.pop(0)
        if shape(path) in seen:
            continue
        seen.add(shape(path))
        current["path"] = path
        response = page.goto(base + path, wait_until="load")
        if response is None or "text/html" not in response.headers.get("content-type", ""):
            continue
        visited.append(path)
        if page.locator("section.charts").count():
            page.wait_for_selector("section.charts[data-charts-ready]", timeout=30_000)
        page.wait_for_load_state("networkidle")
        wide = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if wide[0] > wide[1]:
            culprits = page.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''))""")
            problems.append(f"{path}: {wide[0]} px wide at {wide[1]} px ({', '.join(culprits)})")
        # a download link (the patient's record as PDF or FHIR) is not a page to crawl
        for href in page.eval_on_selector_all("a[href]:not([download])",
                                              "els => els.map(e => e.getAttribute('href'))"):
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path.startswith("/"):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if not target.startswith(SKIP) and shape(target) not in seen:
                queue.append(target)
    return visited, problems


@pytest.mark.parametrize("role", list(ROLES))
def test_no_page_of_a_role_logs_a_console_error_or_scrolls_sideways_at_360_px(
        role, live_server, demo_clinic, browser, log_in):
    username, start = ROLES[role]
    # not is_mobile: a phone's browser widens its layout viewport to fit a page that is too
    # wide, and innerWidth would grow with it
    context = browser.new_context(viewport={"width": 360, "height": 740}, has_touch=True)
    page = context.new_page()
    try:
        log_in(page, live_server.url, username, "speciosa-demo")
        visited, problems = crawl(page, live_server.url, start)
    finally:
        context.close()
    print(f"{role}: {len(visited)} pages:", " ".join(visited))
    assert len(visited) >= len(start) - 1, visited
    assert problems == [], "\n".join(problems)
