"""Benchmark: a load test of the real server (gunicorn, several worker processes, PostgreSQL) on a
generated clinic of 5,000 patients, with 50 concurrent simulated users (issue 8, "Load").

Usage::

    .venv/bin/python benchmarks/bench_load.py [--patients 5000] [--days 60] [--team-size 100]
        [--patients-users 40] [--clinicians 10] [--duration 180] [--max-requests 60000]
        [--workers 4] [--warmup 10] [--double-submits 10] [--json out.json]

What it does
------------
1. Creates the PostgreSQL database ``speciosa_load`` on the server of ``DATABASE_URL`` (default
   ``postgres://postgres@127.0.0.1:5432/``) and migrates it. No other database is touched; it is
   dropped at the end, also after an error or SIGTERM.
2. Generates the clinic: ``--patients`` patients on three sites (UTC, America/New_York,
   America/Chicago) in care teams of ``--team-size`` patients, each with ``--days`` days of
   diaries up to yesterday (1-4 doses a day, craving, side-effect checklists, COWS, labs,
   substances, medications: the rows of ``benchmarks/bench_sweep.py``'s generator, loaded with
   PostgreSQL ``COPY``). Then ``speciosa sweep`` runs once, so that alerts exist.
   Logins: ``--clinicians`` clinicians, each a member of two care teams of one site (a panel of
   2 x ``--team-size`` patients), and ``--patients-users`` patients with a login. All of them
   share one password whose hash is computed once by the project's hasher (Argon2); each
   simulated user logs in once through the real login form before the measured run. Where
   two-factor authentication is installed (``django_otp.plugins.otp_totp``), every load
   clinician gets a confirmed TOTP device with a key the benchmark knows, and completes the
   second step through the real form.
3. Starts ``gunicorn speciosa.wsgi:application --workers N`` on ``127.0.0.1:<free port>`` with
   ``SPECIOSA_DEBUG=0``, a random secret key and ``SPECIOSA_ALLOWED_HOSTS=127.0.0.1``. The
   traffic is plain HTTP on the loopback, so the server runs with a settings module that imports
   ``speciosa.settings`` and only turns off what needs HTTPS (SSL redirect, HSTS, ``Secure``
   cookies); nothing else differs from production settings.
4. Runs the load for ``--duration`` seconds (and at most ``--max-requests`` requests): 40 patients
   each loop GET ``/me/diary/`` (the form's CSRF and one-time ``token`` are parsed from it) and
   POST a diary with 1-3 doses and a craving score; 10 clinicians each loop GET ``/patients/``,
   a random patient of their panel ``/patients/<id>/``, ``/worklist/`` and
   ``/patients/<id>/charts.json``. Think time 1-3 s between requests. Client: ``httpx`` with
   asyncio, one client (cookie jar) per user, all in this process.
   ``--double-submits`` of the diary POSTs are sent twice with the same token (a retried
   request); both must succeed and store one diary entry.
5. Reports per page: requests, requests/s, p50/p95/p99 latency (ms, measured in the client,
   after ``--warmup`` seconds), errors (an exception or a status other than 2xx/3xx); then
   "nothing lost": the diary POSTs that got the success redirect against the Dose and
   Assessment rows that the patients' logins created during the run. PASS/MISSED against the
   targets: p95 < 100 ms for the patient page and the diary save, no errors, nothing lost.
   Next to the client's figures, the server's own per page (p50/p95 of the ``Server-Timing``
   header that ``speciosa.ops.middleware.RequestLogMiddleware`` adds: time inside the Django
   process, the CPU time the request used there, and the time in database queries, with the
   query count), so the share of queueing and of the load generator's CPU is visible; the CPU
   time is what the code costs whatever else runs on the machine.
6. Stops the server and drops the database.

The machine has few cores: the load generator, the gunicorn workers and PostgreSQL share them,
so the figures include the client's own CPU use (printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import html.parser
import json
import logging
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
LOAD_DB = "speciosa_load"
PASSWORD = "load-test-password-not-secret"
TARGET_P95_MS = 100.0
TARGET_PAGES = ("patient page", "diary save")
SITES = (("Load UTC", "UTC"), ("Load New York", "America/New_York"), ("Load Chicago", "America/Chicago"))
# plain HTTP on the loopback: only what needs HTTPS is switched off
BENCH_SETTINGS = '''"""Settings of the load benchmark: production settings over plain HTTP on the loopback."""
from speciosa.settings import *  # noqa: F401,F403

SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
'''


# --------------------------------------------------------------------------------------------- database

from bench_sweep import _pg_admin, _pg_base_url  # noqa: E402 - same folder; one copy of the helpers


def _setup_django() -> None:
    sys.path.insert(0, str(SRC))
    sys.path.insert(0, str(HERE))
    os.environ["DATABASE_URL"] = _pg_base_url() + LOAD_DB
    os.environ.setdefault("SPECIOSA_DEBUG", "1")  # this process only: no secret key needed here
    os.environ["DJANGO_SETTINGS_MODULE"] = "speciosa.settings"
    import django

    django.setup()
    # the project's logging config may log every client request at INFO: not the client's job
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


#: The names ``--database`` takes: the benchmark drops that database (before and after a run),
#: so a name it did not choose (``speciosa``, the clinic's own) is refused before anything runs.
THROWAWAY_DB = re.compile(r"speciosa_load(_[a-z0-9]{1,40})?")


def throwaway_database(name: str) -> str:
    """``--database``'s type: a throw-away name (:data:`THROWAWAY_DB`), or an argparse error."""
    import argparse

    if not THROWAWAY_DB.fullmatch(name):
        raise argparse.ArgumentTypeError(
            f"{name!r} is not a throw-away database name: this benchmark drops the database it "
            "is given, so it takes only speciosa_load or speciosa_load_<letters and digits>")
    return name


def _fresh_database() -> None:
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    _pg_admin(f"DROP DATABASE IF EXISTS {LOAD_DB}")
    _pg_admin(f"CREATE DATABASE {LOAD_DB}")
    call_command("migrate", interactive=False, verbosity=0)


def _drop_database() -> None:
    from django.db import connections

    connections.close_all()
    _pg_admin(f"DROP DATABASE IF EXISTS {LOAD_DB} WITH (FORCE)")


# --------------------------------------------------------------------------------------------- clinic

@dataclass
class LoadUser:
    """One simulated user: login, role, and what it works on."""

    username: str
    role: str  # "patient" or "clinician"
    tz: str = "UTC"
    panel: list[int] = field(default_factory=list)  # a clinician's patients (for the report only)
    totp_key: str = ""  # hex key of the clinician's TOTP device, when 2FA is installed
    used_minutes: dict[str, set[int]] = field(default_factory=dict)  # dose times sent, per local day


def _totp_installed() -> bool:
    from django.conf import settings

    return "django_otp.plugins.otp_totp" in settings.INSTALLED_APPS


def generate(n_patients: int, days: int, team_size: int, n_patient_users: int, n_clinicians: int,
             *, seed: int = 8) -> tuple[dict[str, int], list[LoadUser]]:
    """Write the clinic with COPY; returns rows per table and the load users."""
    from bench_sweep import COLUMNS, Generator, filled_columns
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from speciosa.clinic.models import CareTeam, Patient, Profile, Role, Site

    User = get_user_model()
    rng = random.Random(seed)
    today = dt.datetime.now(dt.UTC).date()
    n_teams = max(1, -(-n_patients // team_size))
    with transaction.atomic():
        sites = [Site.objects.create(name=name, time_zone=tz) for name, tz in SITES]
        # teams 2k and 2k+1 share a site: a clinician works in one pair
        teams = [CareTeam.objects.create(site=sites[(t // 2) % len(sites)], name=f"Team {t + 1:03d}")
                 for t in range(n_teams)]
        patients = []
        for i in range(n_patients):
            team = teams[i % n_teams]
            patients.append(Patient(
                site_id=team.site_id, care_team=team, identifier=f"L-{i:07d}", given_name="Load",
                family_name=f"Patient{i:05d}", birth_date=dt.date(1960 + rng.randrange(40), 1 + rng.randrange(12), 1),
                sex="male" if rng.random() < 0.6 else "female", in_care_since=today - dt.timedelta(days=days)))
        Patient.objects.bulk_create(patients, batch_size=5000)
        # one hash, computed once by the project's first hasher, shared by every load login
        hashed = make_password(PASSWORD)
        users: list[LoadUser] = []
        for c in range(n_clinicians):
            my_teams = list(dict.fromkeys((teams[(2 * c) % n_teams], teams[(2 * c + 1) % n_teams])))
            site_idx = next(k for k, s in enumerate(sites) if s.pk == my_teams[0].site_id)
            u = User.objects.create(username=f"load.clinician{c:02d}", password=hashed)
            Profile.objects.create(user=u, role=Role.CLINICIAN, site=sites[site_idx])
            for t in my_teams:
                t.members.add(u)
            panel = list(Patient.objects.filter(care_team__in=my_teams).values_list("pk", flat=True))
            users.append(LoadUser(u.username, "clinician", SITES[site_idx][1], panel))
        chosen = rng.sample(list(Patient.objects.select_related("site").order_by("pk")), n_patient_users)
        for k, p in enumerate(chosen):
            u = User.objects.create(username=f"load.patient{k:03d}", password=hashed)
            Profile.objects.create(user=u, role=Role.PATIENT, site=p.site)
            p.user = u
            p.save(update_fields=["user"])
            users.append(LoadUser(u.username, "patient", p.site.time_zone))
        if _totp_installed():
            from django_otp.plugins.otp_totp.models import TOTPDevice

            for lu in users:
                if lu.role == "clinician":
                    lu.totp_key = secrets.token_hex(20)
                    TOTPDevice.objects.create(user=User.objects.get(username=lu.username), name="load",
                                              key=lu.totp_key, confirmed=True)

    pids = list(Patient.objects.order_by("pk").values_list("pk", flat=True))
    gen = Generator("full", today - dt.timedelta(days=1), days=days, seed=seed)
    counts = {"clinic_patient": n_patients, **dict.fromkeys(COLUMNS, 0)}
    fill = filled_columns()  # columns the generator does not write get the model's default
    connection.ensure_connection()
    raw = connection.connection
    for start in range(0, len(pids), 500):
        rows: dict[str, list] = {t: [] for t in COLUMNS}
        for pid in pids[start:start + 500]:
            gen.patient_rows(pid, rows)
        with raw.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            for table, data in rows.items():
                if not data:
                    continue
                counts[table] += len(data)
                defaults = tuple(v for _, v in fill[table])
                cols = ", ".join(f'"{c}"' for c in COLUMNS[table] + tuple(c for c, _ in fill[table]))
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row + defaults)
        if not raw.autocommit:
            raw.commit()
    with connection.cursor() as cur:
        for table in COLUMNS:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
        cur.execute("ANALYZE")
    connection.close()
    return counts, users


def _sweep(env: dict[str, str]) -> str:
    """``speciosa sweep`` once (so that alerts exist); returns its last line."""
    out = subprocess.run([sys.executable, "-c", "from speciosa.cli import main; raise SystemExit(main())",
                          "sweep"], env=env, capture_output=True, text=True, timeout=900, check=True)
    return (out.stdout.strip().splitlines() or [""])[-1]


def _used_minutes(users: list[LoadUser]) -> None:
    """The dose times already stored for today and yesterday (an earlier run on a kept database),
    so that the load sends no dose at a minute the patient has used."""
    from speciosa.clinic.models import Dose

    by_name = {u.username: u for u in users if u.role == "patient"}
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    for name, at in (Dose.objects.filter(patient__user__username__in=list(by_name), taken_at__gte=since)
                     .values_list("patient__user__username", "taken_at")):
        u = by_name[name]
        local = at.astimezone(zoneinfo.ZoneInfo(u.tz))
        u.used_minutes.setdefault(local.date().isoformat(), set()).add(local.hour * 60 + local.minute)


def _record_counts() -> dict[str, int]:
    """Rows the patients' own logins entered (doses, assessments) and diary submissions."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM clinic_dose WHERE source = 'patient' AND entered_by_id IS NOT NULL")
        doses = cur.fetchone()[0]
        cur.execute("SELECT COUNT(*) FROM clinic_assessment WHERE source = 'patient' AND entered_by_id IS NOT NULL")
        assessments = cur.fetchone()[0]
        cur.execute("SELECT COUNT(*) FROM clinic_submission WHERE kind = 'diary'")
        submissions = cur.fetchone()[0]
    connection.close()
    return {"doses": doses, "assessments": assessments, "submissions": submissions}


# --------------------------------------------------------------------------------------------- server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env(settings_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "CI")}
    env.update({
        "DATABASE_URL": _pg_base_url() + LOAD_DB,
        "SPECIOSA_DEBUG": "0",
        "SPECIOSA_SECRET_KEY": secrets.token_urlsafe(50),
        "SPECIOSA_ALLOWED_HOSTS": "127.0.0.1",
        "SPECIOSA_SSL_REDIRECT": "0",
        "SPECIOSA_HSTS_SECONDS": "0",
        "DJANGO_SETTINGS_MODULE": "speciosa_load_settings",
        "PYTHONPATH": os.pathsep.join([settings_dir, str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "SPECIOSA_DATA_DIR": settings_dir,
    })
    return env


def _start_server(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    cmd = [str(gunicorn) if gunicorn.exists() else "gunicorn", "speciosa.wsgi:application",
           "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--timeout", "60",
           "--graceful-timeout", "10", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return proc
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not start in 60 s")


def _stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the gunicorn master stops its workers
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --------------------------------------------------------------------------------------------- client

class _Inputs(html.parser.HTMLParser):
    """The ``<input>`` names and values of a page, and each form's action."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.actions: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            self.values.setdefault(a["name"] or "", a.get("value") or "")
        elif tag == "form":
            self.actions.append(a.get("action") or "")


def _inputs(page: str) -> _Inputs:
    p = _Inputs()
    p.feed(page)
    return p


OTP_FIELDS = ("otp_token", "token", "code", "otp")


_TIMING = re.compile(r'(\w+);dur=([0-9.]+)(?:;desc="(\d+) queries")?')


def _server_timing(header: str) -> dict[str, tuple[float, int]]:
    """``app;dur=12.3, db;dur=4.5;desc="9 queries"`` -> {"app": (12.3, 0), "db": (4.5, 9)}."""
    return {m[1]: (float(m[2]), int(m[3] or 0)) for m in _TIMING.finditer(header)}


@dataclass
class Stats:
    """What the load generator saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # Server-Timing app
    db_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # Server-Timing db
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # Server-Timing cpu
    db_queries: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    diary_ok: int = 0  # POSTs answered with the success redirect (retries included)
    diary_unique_ok: int = 0  # distinct tokens answered with the success redirect
    doses_sent: int = 0  # doses in distinct successful submissions
    cravings_sent: int = 0
    double_submits: int = 0
    double_submits_ok: int = 0
    total: int = 0


class Load:
    """The simulated users, sharing one request budget and one deadline."""

    def __init__(self, base: str, users: list[LoadUser], *, duration: float, max_requests: int,
                 warmup: float, double_submits: int, seed: int = 1) -> None:
        self.base = base
        self.users = users
        self.duration = duration
        self.max_requests = max_requests
        self.warmup = warmup
        self.double_left = double_submits
        self.stats = Stats()
        self.rng = random.Random(seed)
        self.t0 = 0.0
        self.deadline = 0.0

    def _more(self) -> bool:
        return time.monotonic() < self.deadline and self.stats.total < self.max_requests

    async def _request(self, client, page: str, method: str, url: str, **kw):
        """One timed request; returns the response or None after an error."""
        self.stats.total += 1
        started = time.monotonic()
        try:
            resp = await client.request(method, url, **kw)
        except Exception as exc:  # noqa: BLE001 - every failure counts as an error
            self._error(page, f"{method} {url}: {type(exc).__name__}: {exc}")
            return None
        ms = (time.monotonic() - started) * 1000
        if started - self.t0 >= self.warmup:
            self.stats.latencies[page].append(ms)
            self.stats.requests[page] += 1
            timing = _server_timing(resp.headers.get("server-timing", ""))
            if "app" in timing:
                self.stats.server_ms[page].append(timing["app"][0])
            if "cpu" in timing:
                self.stats.cpu_ms[page].append(timing["cpu"][0])
            if "db" in timing:
                self.stats.db_ms[page].append(timing["db"][0])
                self.stats.db_queries[page].append(timing["db"][1])
        # a page must be served (a GET redirected to the login or second-factor step is an error)
        if not 200 <= resp.status_code < (300 if method == "GET" else 400):
            self._error(page, f"{method} {url}: HTTP {resp.status_code} {resp.headers.get('location', '')}")
            return None
        return resp

    def _error(self, page: str, text: str) -> None:
        self.stats.errors[page] += 1
        if len(self.stats.error_samples) < 20:
            self.stats.error_samples.append(text)

    async def login(self, client, user: LoadUser) -> None:
        """The real login form (and the TOTP step for staff, when the server asks for it)."""
        page = await client.get("/login/")
        csrf = _inputs(page.text).values.get("csrfmiddlewaretoken", "")
        resp = await client.post("/login/", data={"username": user.username, "password": PASSWORD,
                                                  "csrfmiddlewaretoken": csrf, "next": "/"},
                                 follow_redirects=True)
        if resp.status_code != 200 or "/login/" in str(resp.url.path):
            raise RuntimeError(f"login of {user.username} failed: {resp.status_code} {resp.url}")
        form = _inputs(resp.text)
        otp = next((f for f in OTP_FIELDS if f in form.values and "password" not in form.values), None)
        if user.totp_key and otp and user.role == "clinician" and "/patients" not in str(resp.url.path):
            from django_otp.oath import TOTP

            code = f"{TOTP(bytes.fromhex(user.totp_key)).token():06d}"
            # the code form posts to its own page (the page's first form is the header's log-out)
            resp = await client.post(str(resp.url), data={"csrfmiddlewaretoken": form.values.get(
                "csrfmiddlewaretoken", ""), "next": form.values.get("next", "/"), otp: code},
                follow_redirects=True)
            if "second-factor" in str(resp.url.path):
                raise RuntimeError(f"second factor of {user.username} was not accepted")
            if resp.status_code != 200:
                raise RuntimeError(f"second factor of {user.username} failed: {resp.status_code}")

    async def _think(self) -> None:
        await asyncio.sleep(self.rng.uniform(1.0, 3.0))

    async def patient(self, client, user: LoadUser) -> None:
        tz = zoneinfo.ZoneInfo(user.tz)
        while self._more():
            resp = await self._request(client, "diary form", "GET", "/me/diary/")
            if resp is None:
                await self._think()
                continue
            form = _inputs(resp.text).values
            await self._think()
            if not self._more():
                break
            now = dt.datetime.now(tz)
            minutes_now = now.hour * 60 + now.minute
            n_doses = self.rng.randint(1, 3)
            data = {"csrfmiddlewaretoken": form.get("csrfmiddlewaretoken", ""), "token": form.get("token", ""),
                    "doses-TOTAL_FORMS": "3", "doses-INITIAL_FORMS": "0", "doses-MIN_NUM_FORMS": "0",
                    "doses-MAX_NUM_FORMS": "12", "craving": str(self.rng.randint(0, 10))}
            # a time of today not used yet by this user (a second dose at the same minute asks
            # "did you take it twice?"); early in the day, when every minute so far is taken, the
            # patient confirms it, as the form asks
            used = user.used_minutes.setdefault(now.date().isoformat(), set())
            for i in range(n_doses):
                free = [m for m in range(max(0, minutes_now - 600), minutes_now) if m not in used]
                m = self.rng.choice(free) if free else max(0, minutes_now - self.rng.randint(1, 600))
                if not free:
                    data[f"doses-{i}-confirmed_unusual"] = "on"
                used.add(m)
                data.update({f"doses-{i}-time": f"{m // 60:02d}:{m % 60:02d}",
                             f"doses-{i}-amount": f"{self.rng.choice((1, 1.5, 2, 2.5, 3, 4))}",
                             f"doses-{i}-unit": "g", f"doses-{i}-product": "Red Bali leaf powder"})
            for i in range(n_doses, 3):
                data[f"doses-{i}-unit"] = "g"
            double = self.double_left > 0 and self.rng.random() < 0.1
            if double:
                self.double_left -= 1
            sends = 2 if double else 1
            ok_any = False
            for k in range(sends):
                resp = await self._request(client, "diary save", "POST", "/me/diary/", data=data)
                ok = resp is not None and resp.status_code == 302 and "saved=1" in resp.headers.get("location", "")
                if resp is not None and not ok:
                    self._error("diary save", f"POST /me/diary/: {resp.status_code} without the success redirect")
                if ok:
                    self.stats.diary_ok += 1
                    ok_any = True
                if double and k == 1:
                    self.stats.double_submits += 1
                    self.stats.double_submits_ok += int(ok)
            if ok_any:
                self.stats.diary_unique_ok += 1
                self.stats.doses_sent += n_doses
                self.stats.cravings_sent += 1
            await self._think()

    async def clinician(self, client, user: LoadUser) -> None:
        link = re.compile(r'href="/patients/(\d+)/"')
        while self._more():
            resp = await self._request(client, "patient list", "GET", "/patients/")
            ids = sorted({int(x) for x in link.findall(resp.text)}) if resp is not None else []
            pid = self.rng.choice(ids or user.panel)
            for page, url in (("patient page", f"/patients/{pid}/"), ("worklist", "/worklist/"),
                              ("charts", f"/patients/{pid}/charts.json")):
                await self._think()
                if not self._more():
                    return
                await self._request(client, page, "GET", url)
            await self._think()

    async def run(self) -> float:
        """Log every user in, then run them all; returns the measured seconds."""
        import httpx

        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        clients = [httpx.AsyncClient(base_url=self.base, timeout=30.0, limits=limits, follow_redirects=False)
                   for _ in self.users]
        try:
            sem = asyncio.Semaphore(4)

            async def login(c, u):
                async with sem:
                    await self.login(c, u)

            await asyncio.gather(*(login(c, u) for c, u in zip(clients, self.users, strict=True)))
            self.t0 = time.monotonic()
            self.deadline = self.t0 + self.duration
            ramp = 3.0 / len(self.users)  # a short ramp: not everybody at the same instant

            async def start(i: int, c, u: LoadUser) -> None:
                await asyncio.sleep(i * ramp)
                await (self.patient(c, u) if u.role == "patient" else self.clinician(c, u))

            await asyncio.gather(*(start(i, c, u) for i, (c, u) in enumerate(zip(clients, self.users, strict=True))))
            return time.monotonic() - self.t0
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))


# --------------------------------------------------------------------------------------------- report

def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(stats: Stats, seconds: float, warmup: float, stored: dict[str, int]) -> dict:
    """Print the table and the verdicts; returns the figures."""
    measured = max(seconds - warmup, 1e-9)
    pages = ["patient list", "patient page", "worklist", "charts", "diary form", "diary save"]
    print(f"\nMeasured window: {measured:.0f} s (after a {warmup:.0f} s warm-up; errors count over the whole run)")
    print(f"{'page':14s} {'requests':>9s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    figures: dict = {"pages": {}}
    all_lat: list[float] = []
    for page in pages:
        lat = stats.latencies.get(page, [])
        all_lat += lat
        row = {"requests": len(lat), "rps": len(lat) / measured, "p50_ms": _pct(lat, 50),
               "p95_ms": _pct(lat, 95), "p99_ms": _pct(lat, 99), "errors": stats.errors.get(page, 0)}
        figures["pages"][page] = row
        print(f"{page:14s} {row['requests']:>9,} {row['rps']:>7.1f} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
              f"{row['p99_ms']:>8.1f} {row['errors']:>7,}")
    errors = sum(stats.errors.values())
    print(f"{'all':14s} {len(all_lat):>9,} {len(all_lat) / measured:>7.1f} {_pct(all_lat, 50):>8.1f} "
          f"{_pct(all_lat, 95):>8.1f} {_pct(all_lat, 99):>8.1f} {errors:>7,}")
    print("\nServer side (Server-Timing header of the same requests: time inside the Django process, "
          "without queueing in gunicorn or the client):")
    print("(app: wall time in the process; cpu: CPU time of the request's thread, what the code costs "
          "whatever else runs on the machine; db: time in database calls)")
    print(f"{'page':14s} {'app p50':>8s} {'app p95':>8s} {'cpu p50':>8s} {'cpu p95':>8s} {'db p50':>8s} "
          f"{'db p95':>8s} {'queries':>8s} {'client p95':>11s}")
    for page in pages:
        app, db, nq = stats.server_ms.get(page, []), stats.db_ms.get(page, []), stats.db_queries.get(page, [])
        cpu = stats.cpu_ms.get(page, [])
        row = {"app_p50_ms": _pct(app, 50), "app_p95_ms": _pct(app, 95), "cpu_p50_ms": _pct(cpu, 50),
               "cpu_p95_ms": _pct(cpu, 95), "db_p50_ms": _pct(db, 50),
               "db_p95_ms": _pct(db, 95), "queries_median": statistics.median(nq) if nq else 0}
        figures["pages"][page]["server"] = row
        print(f"{page:14s} {row['app_p50_ms']:>8.1f} {row['app_p95_ms']:>8.1f} {row['cpu_p50_ms']:>8.1f} "
              f"{row['cpu_p95_ms']:>8.1f} {row['db_p50_ms']:>8.1f} "
              f"{row['db_p95_ms']:>8.1f} {row['queries_median']:>8.0f} {figures['pages'][page]['p95_ms']:>11.1f}")
    for sample in stats.error_samples:
        print(f"  error: {sample}")
    print("\nNothing lost (rows entered by the patients' logins during the run):")
    print(f"  diary POSTs answered with the success redirect: {stats.diary_ok:,} "
          f"({stats.diary_unique_ok:,} distinct tokens; {stats.double_submits_ok}/{stats.double_submits} "
          f"deliberate retries with a used token also answered with success)")
    print(f"  submissions stored: {stored['submissions']:,} (expected {stats.diary_unique_ok:,})")
    print(f"  doses: sent {stats.doses_sent:,}, stored {stored['doses']:,}")
    print(f"  craving scores: sent {stats.cravings_sent:,}, stored {stored['assessments']:,}")
    lost_ok = (stored["doses"] == stats.doses_sent and stored["assessments"] == stats.cravings_sent
               and stored["submissions"] == stats.diary_unique_ok)
    verdicts = {}
    for page in TARGET_PAGES:
        p95 = figures["pages"][page]["p95_ms"]
        verdicts[f"{page} p95 < {TARGET_P95_MS:.0f} ms"] = p95 < TARGET_P95_MS
    verdicts["no errors"] = errors == 0
    verdicts["nothing lost, retries stored once"] = lost_ok and stats.double_submits_ok == stats.double_submits
    print("\nTargets:")
    for name, ok in verdicts.items():
        print(f"  {'PASS  ' if ok else 'MISSED'} {name}")
    figures.update({"seconds": measured, "errors": errors, "stored": stored, "verdicts": verdicts,
                    "sent": {"diary_ok": stats.diary_ok, "unique": stats.diary_unique_ok,
                             "doses": stats.doses_sent, "cravings": stats.cravings_sent,
                             "double_submits": stats.double_submits}})
    return figures


def machine_facts(workers: int, users: int) -> str:
    import django
    import psycopg

    with psycopg.connect(_pg_base_url() + "postgres") as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    return (f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"Python {platform.python_version()}, Django {django.get_version()}, PostgreSQL {pg}.\n"
            f"The load generator ({users} simulated users, one asyncio process), {workers} gunicorn workers "
            f"and PostgreSQL all share these {os.cpu_count()} cores, so latencies include contention with "
            f"the client.")


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine from /proc/stat (0, 0 where it is missing)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


# --------------------------------------------------------------------------------------------- driver

def main(argv: list[str] | None = None) -> int:
    global LOAD_DB
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--patients", type=int, default=5000)
    p.add_argument("--days", type=int, default=60, help="days of history per patient")
    p.add_argument("--team-size", type=int, default=100)
    p.add_argument("--patient-users", type=int, default=40)
    p.add_argument("--clinicians", type=int, default=10)
    p.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    p.add_argument("--max-requests", type=int, default=60_000)
    p.add_argument("--warmup", type=float, default=10.0, help="seconds left out of the latency figures")
    p.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    p.add_argument("--double-submits", type=int, default=10)
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--database", default=LOAD_DB, type=throwaway_database,
                   help="name of the throw-away database (created, dropped): speciosa_load or "
                        "speciosa_load_<suffix>")
    p.add_argument("--keep", action="store_true",
                   help="keep the database and write the load users next to it, for --reuse")
    p.add_argument("--reuse", action="store_true",
                   help="reuse a database kept by --keep (same --database): no generation, no sweep")
    p.add_argument("--broker", default="",
                   help="task queue URL (e.g. redis://127.0.0.1:6379/7): the server enqueues the "
                        "re-evaluation after a diary save, as in production, and one worker "
                        "(concurrency 1, on the same cores) runs it; default: none (eager, in the request)")
    args = p.parse_args(argv)
    LOAD_DB = args.database
    users_file = Path(tempfile.gettempdir(), f"{LOAD_DB}-users.json")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stops the server, drops the DB

    n_users = args.patient_users + args.clinicians
    _setup_django()
    print(machine_facts(args.workers, n_users), flush=True)
    settings_dir = tempfile.mkdtemp(prefix="speciosa-load-", dir="/tmp")
    Path(settings_dir, "speciosa_load_settings.py").write_text(BENCH_SETTINGS)
    log = Path(settings_dir, "gunicorn.log")
    server = worker = None
    try:
        started = time.perf_counter()
        env = _server_env(settings_dir)
        if args.reuse:
            from django.core.management import call_command

            call_command("migrate", interactive=False, verbosity=0)  # the code may have moved on
            users = [LoadUser(**u) for u in json.loads(users_file.read_text())]
            print(f"Clinic: reusing the database {LOAD_DB} kept by an earlier --keep run", flush=True)
        else:
            _fresh_database()
            counts, users = generate(args.patients, args.days, args.team_size, args.patient_users,
                                     args.clinicians)
            print(f"Clinic: {args.patients:,} patients in care teams of {args.team_size}, {args.days} days "
                  f"each: {sum(counts.values()):,} rows in {time.perf_counter() - started:.0f} s "
                  f"({', '.join(f'{t.split(chr(95), 1)[1]} {c:,}' for t, c in counts.items())})", flush=True)
            t = time.perf_counter()
            print(f"speciosa sweep: {_sweep(env)} ({time.perf_counter() - t:.0f} s)", flush=True)
            if args.keep:
                users_file.write_text(json.dumps([{**u.__dict__, "used_minutes": {}} for u in users]))
        panels = [len(u.panel) for u in users if u.role == "clinician"]
        print(f"Load users: {args.patient_users} patients, {args.clinicians} clinicians (panels of "
              f"{min(panels)}-{max(panels)} patients){', with TOTP' if _totp_installed() else ''}", flush=True)
        _used_minutes(users)
        before = _record_counts()
        if args.broker:
            env["CELERY_BROKER_URL"] = args.broker
            worker = subprocess.Popen(
                [sys.executable, "-c", "from speciosa.cli import main; raise SystemExit(main())", "worker",
                 "--loglevel", "WARNING", "--", "--concurrency", "1"],
                env=env, stdout=Path(settings_dir, "worker.log").open("w"), stderr=subprocess.STDOUT,
                start_new_session=True)
            print(f"task queue: {args.broker}, one worker (pid {worker.pid})", flush=True)
        port = _free_port()
        server = _start_server(env, port, args.workers, log)
        print(f"gunicorn: {args.workers} workers on 127.0.0.1:{port}; load for {args.duration:.0f} s "
              f"(at most {args.max_requests:,} requests)", flush=True)
        load = Load(f"http://127.0.0.1:{port}", users, duration=args.duration, max_requests=args.max_requests,
                    warmup=args.warmup, double_submits=args.double_submits)
        print(f"Load average before the run: {os.getloadavg()[0]:.1f} (other work on the machine shows here)",
              flush=True)
        cpu0, jiffies0 = os.times(), _cpu_jiffies()
        seconds = asyncio.run(load.run())
        cpu1, jiffies1 = os.times(), _cpu_jiffies()
        client_cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        busy = (jiffies1[0] - jiffies0[0]) / max(1, jiffies1[1] - jiffies0[1])
        _stop_server(server)
        if worker is not None:
            _stop_server(worker)
        after = _record_counts()
        stored = {k: after[k] - before[k] for k in after}
        print(f"Load generator CPU: {client_cpu:.0f} s over {seconds:.0f} s "
              f"({100 * client_cpu / seconds / (os.cpu_count() or 1):.0f} % of the machine); whole machine busy "
              f"{100 * busy:.0f} % (client, server, PostgreSQL and anything else running); "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        figures = report(load.stats, seconds, args.warmup, stored)
        figures.update({"machine_cores": os.cpu_count(), "client_cpu_s": client_cpu, "machine_busy": busy,
                        "workers": args.workers, "broker": bool(args.broker),
                        "patients": args.patients, "days": args.days, "users": n_users})
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
        return 0 if all(figures["verdicts"].values()) else 1
    finally:
        if worker is not None:
            _stop_server(worker)
        if server is not None:
            _stop_server(server)
            if log.exists() and log.stat().st_size:
                tail = log.read_text()[-2000:]
                print(f"\ngunicorn log (tail):\n{tail}")
        if args.keep or args.reuse:
            print(f"database {LOAD_DB} kept (drop it with: psql -c 'DROP DATABASE {LOAD_DB}')")
        else:
            _drop_database()
        shutil.rmtree(settings_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
