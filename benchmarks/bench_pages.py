"""Benchmark: the pages people wait for (issue 15), against a trivial page measured in the same run.

Usage::

    .venv/bin/python benchmarks/bench_pages.py [--patients 16] [--days 200] [--repeat 40]
                                               [--browser-repeat 12] [--no-browser]

A throw-away SQLite database in a temporary folder (the same builder as ``speciosa demo``; with
``DATABASE_URL`` the database it names: give it a throw-away one). The demo patient is the one
with the most diary days; the clinician is a member of their care team.

What is measured
----------------
Server side (Django's test client in this process, ``--repeat`` requests after one warm-up each;
p50, p95 and max wall time, and the number of queries of one request):

- ``/health/`` and ``/login/``: the baseline, a page that does next to nothing;
- ``/patients/<id>/``: the clinician's patient page (target: interactive under 300 ms);
- ``/patients/<id>/charts.json``: its chart data, warm (reused until the record changes) and
  cold (the cache emptied before each request: the first load after a change; target: under
  100 ms p95);
- ``/research/``: the research page's first load with the analysis not computed yet (it is
  computed off the request, the page says so), the time of that computation, and a load with
  the analysis cached (target: first load under 1 s).

In Chromium (Playwright, ``/usr/bin/chromium``, against ``speciosa serve`` on the same
database, logged in with a verified session): ``domInteractive`` and ``domContentLoadedEventEnd``
of the navigation timing (time to interactive), and the time until the patient page's first
chart is drawn (its chart data fetched and rendered).

The machine may be shared with other work: the load average is printed before and after, and a
baseline page is measured in the same run so the figures can be read against it. It is not a
test; the query counts are capped by ``tests/web/test_page_queries.py``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRET = "benchmark-only-" + "x" * 40


def _setup() -> None:
    if "DATABASE_URL" not in os.environ:
        os.environ["SPECIOSA_DATA_DIR"] = tempfile.mkdtemp(prefix="speciosa-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "speciosa.settings")
    # a throw-away key for the benchmark's own database (production requires a real one)
    os.environ.setdefault("SPECIOSA_SECRET_KEY", SECRET)
    os.environ.setdefault("SPECIOSA_DEBUG", "1")  # as 'make demo' serves it (plain HTTP)
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are synchronous
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    os.environ.setdefault("SPECIOSA_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def stats(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"p50 {statistics.median(ms):7.1f}  p95 {p95:7.1f}  max {ms[-1]:7.1f} ms  (n={len(ms)})"


def line(name: str, samples: list[float], extra: str = "") -> None:
    print(f"  {name:<34} {stats(samples)}{'  ' + extra if extra else ''}")


def verified_client(user):
    """A test client logged in as ``user`` with the second factor done (as after a code)."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from speciosa.web import security

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    if security.needs_second_factor(user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


def timed_get(client, url: str, repeat: int, before=None) -> tuple[list[float], int]:
    from django.db import connection

    if before:
        before()
    response = client.get(url)  # warm-up
    assert response.status_code == 200, (url, response.status_code)
    if before:
        before()
    queries = []  # counted by a wrapper: the queries log is reset when a request starts
    with connection.execute_wrapper(lambda ex, sql, p, many, ctx: queries.append(1) or ex(sql, p, many, ctx)):
        client.get(url)
    samples = []
    for _ in range(repeat):
        if before:
            before()
        t0 = time.perf_counter()
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        samples.append(time.perf_counter() - t0)
    return samples, len(queries)


def server_side(patient, clinician, researcher, repeat: int) -> None:
    from django.core.cache import cache
    from django.test import Client

    from speciosa.research import cached

    print("\nServer side (Django test client, this process)")
    anon = Client(HTTP_HOST="localhost")
    for url in ("/health/", "/login/"):
        samples, q = timed_get(anon, url, repeat)
        line(f"baseline {url}", samples, f"{q} queries")
    clin = verified_client(clinician)
    page = f"/patients/{patient.pk}/"
    samples, q = timed_get(clin, page, repeat)
    line("patient page", samples, f"{q} queries  (target: interactive < 300 ms)")
    charts = f"/patients/{patient.pk}/charts.json"
    samples, q = timed_get(clin, charts, repeat)
    line("chart data, warm", samples, f"{q} queries  (target: p95 < 100 ms)")
    samples, q = timed_get(clin, charts, max(5, repeat // 4), before=cache.clear)
    line("chart data, cold (after a change)", samples, f"{q} queries")

    res = verified_client(researcher)
    from django.conf import settings

    settings.RESEARCH_ANALYSIS_BACKGROUND = True  # as under 'speciosa serve'
    started = []
    thread_class = cached.threading.Thread  # the module's: put back at once
    cached.threading.Thread = lambda target, args, **kw: type(  # run it here, timed apart
        "T", (), {"start": lambda self: started.append((target, args))})()
    cache.clear()
    try:
        t0 = time.perf_counter()
        first = res.get("/research/")
        first_s = time.perf_counter() - t0
    finally:
        cached.threading.Thread = thread_class
    computing = b"being computed" in first.content
    t0 = time.perf_counter()
    for target, args in started:
        target(*args)
    compute_s = time.perf_counter() - t0
    line("research, first load", [first_s],
         "(target < 1 s; " + ("analysis computed off the request)" if computing else "analysis in it)"))
    line("research, the analysis (task)", [compute_s], "off the request")
    samples, q = timed_get(res, "/research/", max(5, repeat // 4))
    line("research, analysis cached", samples, f"{q} queries")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_side(patient, clinician, researcher, repeat: int) -> None:
    chromium = os.environ.get("SPECIOSA_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        print(f"\nChromium: not measured ({chromium} is missing)")
        return
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = dict(os.environ, SPECIOSA_DEBUG="1", SPECIOSA_SECRET_KEY=os.environ["SPECIOSA_SECRET_KEY"],
               SPECIOSA_RESEARCH_ANALYSIS_BACKGROUND="1")
    server = subprocess.Popen([str(Path(sys.executable).with_name("speciosa")), "serve", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/health/", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("\nChromium: the server did not start")
                    return
                time.sleep(0.3)
        print(f"\nChromium (headless, speciosa serve on port {port}; navigation timing)")
        cookies = {who.username: _session_cookie(who) for who in (clinician, researcher)}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync"])
            # research: the first load, right after the server started
            ctx = _context(browser, cookies[researcher.username], base)
            pg = ctx.new_page()
            t0 = time.perf_counter()
            pg.goto(base + "/research/")
            first = time.perf_counter() - t0
            state = "analysis being computed" if "being computed" in pg.content() else "analysis shown"
            print(f"  {'research, first load':<34} {first * 1000:7.1f} ms wall  ({state}; target < 1 s)")
            for url, name in ((base + "/login/", "baseline /login/"),):
                _measure(_context(browser, None, base).new_page(), url, name, repeat)
            clin = _context(browser, cookies[clinician.username], base).new_page()
            _measure(clin, f"{base}/patients/{patient.pk}/", "patient page", repeat,
                     chart=True)
            deadline = time.monotonic() + 120  # the analysis finishes in the server's thread
            while "being computed" in pg.content() and time.monotonic() < deadline:
                time.sleep(1)
                pg.goto(base + "/research/")
            _measure(pg, base + "/research/", "research, analysis cached", max(3, repeat // 3))
            print("\n" + load())
            browser.close()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


def _session_cookie(user) -> str:
    from django.conf import settings

    return verified_client(user).cookies[settings.SESSION_COOKIE_NAME].value


def _context(browser, cookie: str | None, base: str):
    from django.conf import settings

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    if cookie is not None:
        ctx.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": base}])
    return ctx


NAV = """() => { const n = performance.getEntriesByType('navigation')[0];
  return [n.responseEnd, n.domInteractive, n.domContentLoadedEventEnd, n.loadEventEnd]; }"""


def _measure(page, url: str, name: str, repeat: int, chart: bool = False) -> None:
    page.goto(url)  # warm-up (static files cached, as for a clinician's second patient)
    response, interactive, dcl, drawn = [], [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded")
        if chart:
            page.wait_for_selector("[data-charts-src] [data-chart] svg", timeout=30000)
            drawn.append(time.perf_counter() - t0)
        page.wait_for_load_state("load")
        r, i, d, _load = page.evaluate(NAV)
        response.append(r / 1000)
        interactive.append(i / 1000)
        dcl.append(d / 1000)
    line(f"{name}: response end", response)
    line(f"{name}: DOM interactive", interactive)
    line(f"{name}: DOMContentLoaded end", dcl, "(time to interactive)")
    if chart:
        line(f"{name}: first chart drawn", drawn, "(wall, from navigation)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=16)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--browser-repeat", type=int, default=12)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    _setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db.models import Count

    call_command("migrate", interactive=False, verbosity=0)
    from speciosa import demo
    from speciosa.clinic import alerts
    from speciosa.clinic.models import Patient

    print(load())
    t0 = time.perf_counter()
    demo.build_demo_clinic(n_patients=args.patients, days=args.days)
    alerts.sweep()
    print(f"demo clinic: {args.patients} patients x {args.days} days in {time.perf_counter() - t0:.1f} s")
    patient = (Patient.objects.annotate(n=Count("diary_days")).order_by("-n", "pk")
               .select_related("care_team").first())
    clinician = patient.care_team.members.order_by("pk").first()
    researcher = get_user_model().objects.get(username="researcher")
    print(f"patient #{patient.pk} ({patient.n} diary days), clinician {clinician.username}")
    server_side(patient, clinician, researcher, args.repeat)
    if not args.no_browser:
        from django.db import connection

        connection.close()  # the server process opens the same database
        browser_side(patient, clinician, researcher, args.browser_repeat)
    else:
        print("\n" + load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
