"""The researcher page: researchers only (others 403), counts, results, plots, the
statement, and nothing identifiable."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

URL = "/research/"


def test_the_research_url_is_mounted():
    assert reverse("research:cohort") == URL


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("who", ["clinician_a", "patient_a", "admin"])
def test_everyone_but_a_researcher_gets_403(consented, login, who):
    user = getattr(consented, who)
    user = user.user if who.startswith("patient") else user
    assert login(user).get(URL).status_code == 403


def test_a_researcher_sees_counts_results_statement_and_plots_but_no_names(consented, login):
    from speciosa.clinic.models import AuditEntry, Patient

    response = login(consented.researcher).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Consented to research" in html and "Prolactin draws analysed" in html
    assert "Recorded kratom exposure and prolactin" in html
    assert "What these numbers can show" in html and "cannot show" in html
    assert html.count("<svg") == 3 and "<script src=\"http" not in html
    for p in Patient.objects.all():
        for needle in (p.given_name, p.family_name, p.identifier, p.user.username,
                       p.birth_date.isoformat()):
            assert needle not in html
    for day in ("2026-03-02", "2026-04-13", "Mar. 2, 2026", "April 13, 2026"):
        assert day not in html
    assert "P-" not in html  # not even pseudonyms
    assert AuditEntry.objects.filter(user=consented.researcher, action="view",
                                     model="ResearchAnalysis").count() == 1


def test_the_page_reuses_its_analysis_until_the_data_change(consented, login, monkeypatch):
    from speciosa.clinic.models import Consent
    from speciosa.research import analysis

    calls = []
    real = analysis.run_cohort_analysis
    monkeypatch.setattr(analysis, "run_cohort_analysis", lambda *a: calls.append(1) or real(*a))
    client = login(consented.researcher)
    client.get(URL)
    client.get(URL)
    assert len(calls) == 1
    Consent.objects.create(patient=consented.patient_b, kind="research", given=False)
    assert "Consented to research</div><div class=\"v\">1<" in client.get(URL).content.decode()
    assert len(calls) == 2


def test_the_page_says_k_and_that_the_method_is_not_safe_harbor(consented, login, settings):
    settings.RESEARCH_K_ANONYMITY = 1  # two consented patients: with k=5 both are suppressed
    html = login(consented.researcher).get(URL).content.decode()
    assert "k = 1 (required 1)" in html  # one woman at one site, one man at the other
    assert "not HIPAA Safe Harbor" in html
    assert "In the de-identified data</div><div class=\"v\">2<" in html


def test_a_diary_day_in_year_1_does_not_break_the_page_for_the_whole_clinic(consented, login):
    """Issue #11 item 8: the research page failed with an OverflowError for everyone."""
    from speciosa.clinic.models import DiaryDay, Dose

    p = consented.patient_a
    p.site.time_zone = "America/New_York"
    p.site.save()
    # in care since an earlier day: the fixture's default is today in UTC, which between 00:00
    # and 05:00 UTC is tomorrow in New York (an entry after the export day is left out)
    p.in_care_since = dt.date(2026, 1, 5)
    p.save(update_fields=["in_care_since"])
    diary = DiaryDay.objects.create(patient=p, day=dt.date(1, 1, 1))
    Dose.objects.create(patient=p, source="patient", diary=diary, unit="g", amount=Decimal("2"),
                        taken_at=dt.datetime(1, 1, 1, 0, 30, tzinfo=ZoneInfo("UTC")),
                        mitragynine_mg=30.0)
    response = login(consented.researcher).get(URL)
    assert response.status_code == 200
    assert "Records left out: implausible date 2" in response.content.decode()


def test_the_page_view_is_audited_with_who_what_and_why(consented, login):
    from speciosa.clinic.models import AuditEntry

    login(consented.researcher).get(URL)
    entry = AuditEntry.objects.get(model="ResearchAnalysis")
    assert entry.user == consented.researcher and entry.action == "view"
    assert entry.after["purpose"] == "research: cohort analysis"
    assert entry.after["cohort"]["patients_consented"] == 2 and "k" in entry.after
    assert "purpose of use" in entry.reason


def test_the_analysis_is_computed_off_the_request_and_shown_until_the_data_change(
        consented, login, settings, monkeypatch):
    """Issue 15: with a worker (here: the background thread of ``speciosa serve``) the first
    load does not wait for the analysis; once computed it is reused; a write makes the next
    load show it as out of date while the new one is computed."""
    from speciosa.clinic.models import Consent
    from speciosa.research import cached

    started = []

    class Thread:  # the background thread, run when the test says so
        def __init__(self, target, args, **kwargs):
            self.run = lambda: target(*args)

        def start(self):
            started.append(self)

    monkeypatch.setattr(cached.threading, "Thread", Thread)
    settings.RESEARCH_ANALYSIS_BACKGROUND = True
    client = login(consented.researcher)
    first = client.get(URL).content.decode()
    assert "being computed for the first time" in first and "Mixed-effects models" not in first
    assert len(started) == 1
    client.get(URL)
    assert len(started) == 1  # one computation at a time
    started.pop().run()
    page = client.get(URL).content.decode()
    assert "Mixed-effects models" in page and "data have changed" not in page and not started
    Consent.objects.create(patient=consented.patient_a, kind="research", given=False)
    stale = client.get(URL).content.decode()
    assert "Mixed-effects models" in stale and "data have changed since this analysis" in stale
    assert len(started) == 1
    started.pop().run()
    assert "data have changed" not in client.get(URL).content.decode()


def test_a_clinical_write_queues_the_analysis_with_a_broker(consented, settings, monkeypatch,
                                                           django_capture_on_commit_callbacks):
    from speciosa import tasks
    from speciosa.research import cached

    queued = []
    monkeypatch.setattr(tasks.research_analysis, "delay", lambda: queued.append(1))
    monkeypatch.setattr(tasks, "evaluate_patient", type("T", (), {"delay": staticmethod(lambda pk: None)}))
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with django_capture_on_commit_callbacks(execute=True):
        tasks.after_change(consented.patient_a)
        tasks.after_change(consented.patient_b)
    assert queued == [1]  # one task for a burst of writes
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert cached.refresh() is True and cached.refresh() is False  # the task: once per data
