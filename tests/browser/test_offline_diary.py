"""The patient's app offline (issue 17, docs/offline.md), in a real browser on a 360 px phone:
a diary written offline waits on the phone ("waiting to send (1)"), survives a reload, and is
stored once when the phone is back online; a queued entry sent twice stores one; an ended
session keeps the entry and asks to log in; log out deletes what the phone kept; staff pages are
never controlled by the service worker."""

from __future__ import annotations

import os

import pytest

from speciosa.clinic.models import Dose

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def _cut_worker(route):
    route.abort("internetdisconnected")


def _offline(page, offline: bool):
    """The phone loses (or finds) its connection: the page's requests through Playwright's
    offline mode, and the service worker's own, which that mode does not reach, cut here."""
    if offline:
        page.context.set_offline(True)
        page.context.route("**/*", _cut_worker)
    else:
        page.context.unroute("**/*", _cut_worker)
        page.context.set_offline(False)


def _poll(page, script, timeout_s=40.0):
    """Wait until ``script`` is true in the page (polled from here: the page's CSP refuses
    the string predicates of Playwright's wait_for_function)."""
    import time

    from playwright.sync_api import Error

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if page.evaluate(script):
                return
        except Error:  # the page reloads itself (the diary list after a send)
            pass
        page.wait_for_timeout(250)
    raise AssertionError(f"never true: {script}")


def _install(page, base):
    """Open the app online once: the worker installs and controls the patient's pages, and
    keeps today's diary form and the diary list for offline use."""
    _poll(page, "() => navigator.serviceWorker.controller !== null")
    page.goto(f"{base}/me/diary/")
    page.goto(f"{base}/me/")
    _poll(page, "() => navigator.serviceWorker.controller !== null")


def _waiting(page) -> str:
    page.locator("[data-offline-status]:not([hidden]) [data-line]").wait_for(timeout=10000)
    return page.inner_text("[data-offline-status]")


def _write_diary(page, amount="3.5"):
    page.goto(page.url.split("/me/")[0] + "/me/diary/")
    page.fill("#id_doses-0-time", "00:00")  # never later than now, whatever the hour of the run
    page.fill("#id_doses-0-amount", amount)
    page.select_option("#id_doses-0-unit", "g")
    page.click("label.pill:has(input[name=craving][value='6'])")
    page.click("button:has-text('Save diary')")


def test_a_diary_written_offline_waits_on_the_phone_and_is_stored_once_online(live_server, clinic, phone, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    _offline(phone, True)
    _write_diary(phone)
    phone.wait_for_url(f"{base}/me/?queued=1")
    assert "Saved on this phone, waiting to send (1)." in _waiting(phone)
    assert Dose.objects.count() == 0
    phone.reload()
    assert "Saved on this phone, waiting to send (1)." in _waiting(phone)
    assert "You are offline" in phone.inner_text("[data-offline-status]")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    _shot(phone, "offline-waiting-360.png")
    if SHOTS:
        phone.set_viewport_size({"width": 1280, "height": 900})
        _shot(phone, "offline-waiting-1280.png")
        phone.set_viewport_size({"width": 360, "height": 740})
    _offline(phone, False)
    _sent_all(phone)
    dose = Dose.objects.get(patient=clinic.patient_a)
    assert float(dose.amount) == 3.5 and dose.unit == "g"
    assert Dose.objects.count() == 1


_QUEUE_JS = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("speciosa-offline");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const t = open.result.transaction(["queue"], "readonly");
    const req = t.objectStore("queue").getAll();
    req.onsuccess = () => { resolve(req.result); open.result.close(); };
  };
})"""

_PUT_BACK_JS = """(entry) => new Promise((resolve, reject) => {
  const open = indexedDB.open("speciosa-offline");
  open.onsuccess = () => {
    const t = open.result.transaction(["queue"], "readwrite");
    t.objectStore("queue").put(entry);
    t.oncomplete = () => { open.result.close(); resolve(true); };
    t.onerror = () => reject(t.error);
  };
})"""


def _sent_all(page):
    """Wait until nothing waits on the phone."""
    _poll(page, "() => { const b = document.querySelector('[data-offline-status]');"
                " return b !== null && b.getAttribute('data-left') === '0'; }")


def test_the_same_queued_entry_sent_twice_stores_one_record(live_server, clinic, phone, log_in):
    """A worker stopped after the server stored an entry but before it deleted it sends the
    entry again: the one-time token makes the second send a replay of the first."""
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    _offline(phone, True)
    _write_diary(phone, amount="2.5")
    phone.wait_for_url(f"{base}/me/?queued=1")
    [entry] = phone.evaluate(_QUEUE_JS)
    assert entry["token"] and "doses-0-amount=2.5" in entry["body"]
    _offline(phone, False)
    _sent_all(phone)
    assert Dose.objects.count() == 1
    phone.evaluate(_PUT_BACK_JS, entry)  # the same entry, token and values, queued again
    assert len(phone.evaluate(_QUEUE_JS)) == 1
    phone.evaluate("navigator.serviceWorker.controller.postMessage({type: 'replay'})")
    _sent_all(phone)
    phone.wait_for_timeout(500)
    assert phone.evaluate(_QUEUE_JS) == []  # the server answered "stored" again
    assert Dose.objects.count() == 1
    assert float(Dose.objects.get().amount) == 2.5


def test_two_diaries_written_offline_from_the_kept_page_are_both_stored(live_server, clinic, phone, log_in):
    """The kept diary page carries one token; the second entry written on it offline gets one
    of the fresh tokens the server gave the phone, so it is not refused as a changed resend."""
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    _offline(phone, True)
    _write_diary(phone, amount="2")
    phone.wait_for_url(f"{base}/me/?queued=1")
    _write_diary(phone, amount="4")
    phone.wait_for_url(f"{base}/me/?queued=1")
    assert "waiting to send (2)" in _waiting(phone)
    tokens = {e["token"] for e in phone.evaluate(_QUEUE_JS)}
    assert len(tokens) == 2
    _offline(phone, False)
    _sent_all(phone)
    assert sorted(float(d.amount) for d in Dose.objects.all()) == [2.0, 4.0]


def test_an_ended_session_keeps_the_entry_and_asks_to_log_in(live_server, clinic, phone, log_in):
    from django.contrib.sessions.models import Session

    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    _offline(phone, True)
    _write_diary(phone)
    phone.wait_for_url(f"{base}/me/?queued=1")
    Session.objects.all().delete()  # the session ends on the server while the phone is offline
    _offline(phone, False)
    phone.locator("[data-login-line]:not([hidden])").wait_for(timeout=40000)
    text = phone.inner_text("[data-offline-status]")
    assert "waiting to send (1)" in text and "log in again to send them" in text
    assert len(phone.evaluate(_QUEUE_JS)) == 1
    assert Dose.objects.count() == 0
    _shot(phone, "offline-log-in-again-360.png")
    phone.click("[data-login-line] a")
    phone.fill("#id_username", "pat_a")
    phone.fill("#id_password", clinic.password)
    phone.click("button[type=submit]")
    phone.wait_for_url(f"{base}/me/**")
    _sent_all(phone)
    assert Dose.objects.count() == 1


def test_a_refused_entry_waits_for_the_patient_and_log_out_deletes_everything(live_server, clinic, phone, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    _offline(phone, True)
    _write_diary(phone, amount="-2")  # refused by the server's check, which is not on the phone
    phone.wait_for_url(f"{base}/me/?queued=1")
    _offline(phone, False)
    phone.locator("[data-problem-line]:not([hidden])").wait_for(timeout=40000)
    assert "1 not sent: the clinic asked about it" in phone.inner_text("[data-offline-status]")
    assert Dose.objects.count() == 0
    assert len(phone.evaluate(_QUEUE_JS)) == 1
    assert phone.evaluate("caches.keys()")  # pages kept on the phone
    phone.once("dialog", lambda d: (d.message.startswith("1 diary entries on this phone are not sent yet")
                                    and d.accept()) or d.dismiss())
    phone.click("text=Log out")
    phone.wait_for_url(f"{base}/login/")
    phone.wait_for_timeout(300)
    assert phone.evaluate("caches.keys()") == []
    assert "speciosa-offline" not in [d["name"] for d in phone.evaluate("indexedDB.databases()")]
    assert phone.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    assert Dose.objects.count() == 0


def test_opening_a_refused_entry_puts_it_back_in_the_form_with_the_question(live_server, clinic, phone, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    _offline(phone, True)
    _write_diary(phone, amount="-2")
    phone.wait_for_url(f"{base}/me/?queued=1")
    _offline(phone, False)
    phone.locator("[data-problem-line]:not([hidden])").wait_for(timeout=40000)
    phone.click("[data-open-problem]")
    phone.wait_for_url(f"{base}/me/diary/**")
    assert "more than 0" in phone.inner_text("fieldset.dose")
    assert phone.input_value("#id_doses-0-amount") == "-2"
    assert phone.evaluate(_QUEUE_JS) == []
    phone.fill("#id_doses-0-amount", "2")
    phone.click("button:has-text('Save diary')")
    phone.wait_for_url(f"{base}/me/?saved=1")
    assert [float(d.amount) for d in Dose.objects.all()] == [2.0]


def test_staff_pages_are_never_controlled_by_the_worker(live_server, clinic, phone, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    scope = phone.evaluate("navigator.serviceWorker.getRegistration().then(r => r.scope)")
    assert scope == f"{base}/me/"
    phone.goto(f"{base}/learn/")  # outside the app's scope
    assert phone.evaluate("navigator.serviceWorker.controller") is None
    assert phone.evaluate("navigator.serviceWorker.getRegistration('/patients/').then(r => r === undefined)")
    phone.goto(f"{base}/me/")
    phone.once("dialog", lambda d: d.accept())
    phone.click("text=Log out")
    phone.wait_for_url(f"{base}/login/")
    log_in(phone, base, "clin_a", clinic.password)
    phone.wait_for_url(f"{base}/patients/")
    assert phone.evaluate("navigator.serviceWorker.controller") is None
    assert phone.locator("link[rel=manifest]").count() == 0
    assert phone.locator("script[src*='pwa.js']").count() == 0
    phone.goto(f"{base}/worklist/")
    assert phone.evaluate("navigator.serviceWorker.controller") is None


def test_an_urgent_symptom_written_offline_shows_the_help_numbers_at_once(live_server, clinic, phone, log_in):
    """Offline the server cannot show its help after the save, so the phone does."""
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    phone.wait_for_timeout(500)  # pwa.js keeps the help page on the phone at each visit to /me/
    _offline(phone, True)
    phone.goto(f"{base}/me/diary/")
    phone.fill("#id_doses-0-time", "00:00")
    phone.fill("#id_doses-0-amount", "3")
    phone.check("input[name=side_effects][value=seizure]")
    phone.click("button:has-text('Save diary')")
    phone.wait_for_url(f"{base}/me/offline/help/")
    help_box = phone.locator("[data-offline-urgent]")
    help_box.wait_for()
    assert "Get help now" in help_box.inner_text() and "911" in help_box.inner_text()
    assert "saved on this phone only" in help_box.inner_text()
    assert "waiting to send (1)" in _waiting(phone)
    _shot(phone, "offline-urgent-360.png")
    _offline(phone, False)
    _sent_all(phone)
    assert Dose.objects.count() == 1


def test_a_kept_page_whose_token_was_used_sends_a_new_entry_not_a_refused_resend(live_server, clinic, phone, log_in):
    """On a connection too slow for the page, the worker opens the kept diary page, whose token
    the last diary used: the new entry gets a fresh token and is stored as a second diary entry."""
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    _write_diary(phone, amount="1")  # online: the kept page's token is now used (and the
    # worker has its fresh tokens: the first page's hello fetched them)
    phone.wait_for_url(f"{base}/me/?saved=1")
    assert Dose.objects.count() == 1

    def no_page(route):  # the page itself does not arrive; posts do
        if route.request.method == "GET" and route.request.url.endswith("/me/diary/"):
            return route.abort("timedout")
        return route.continue_()

    phone.context.route("**/*", no_page)
    _write_diary(phone, amount="5")
    phone.wait_for_url(f"{base}/me/?saved=1")
    phone.context.unroute("**/*", no_page)
    assert sorted(float(d.amount) for d in Dose.objects.all()) == [1.0, 5.0]


def test_chromium_finds_the_app_installable(live_server, clinic, phone, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    _install(phone, base)
    cdp = phone.context.new_cdp_session(phone)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["url"] == f"{base}/me/manifest.webmanifest"
    assert manifest["errors"] == []
    errors = [e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]]
    # a Playwright context is a private (incognito) profile, where Chromium never installs
    assert [e for e in errors if e != "in-incognito"] == []


@pytest.mark.parametrize("worker", ["allow", "block"])
def test_the_home_page_leaves_no_request_in_flight(live_server, clinic, browser, log_in, worker):
    """pwa.js fetches whom-to-call at each visit of /me/ to keep it on the phone. Chromium
    leaves a fetch whose body no one reads in flight until the response is garbage-collected,
    so the page never went network-idle (the 360 px crawl timed out, depending on when the
    collector ran). The fetch must finish, well before its 8 s bound aborts it, with the
    app's worker in the way or without it."""
    base = live_server.url
    context = browser.new_context(viewport={"width": 360, "height": 740}, service_workers=worker)
    page = context.new_page()
    ended: dict[str, str] = {}
    page.on("requestfinished", lambda r: ended.setdefault(r.url, "finished"))
    page.on("requestfailed", lambda r: ended.setdefault(r.url, f"failed: {r.failure}"))
    try:
        log_in(page, base, "pat_a", clinic.password)
        page.wait_for_url(f"{base}/me/")
        # the log-in's own visit of /me/ starts the same fetches: the goto below would abort
        # them, and their failure could be the first word on those addresses (ci9, a fast
        # machine): let them end first
        page.wait_for_load_state("networkidle", timeout=6000)
        for _ in range(2):  # the second visit's fetch goes through the worker when allowed
            ended.clear()
            page.goto(f"{base}/me/")
            page.wait_for_load_state("networkidle", timeout=6000)
            assert ended.get(f"{base}/me/offline/help/") == "finished", ended
    finally:
        context.close()
