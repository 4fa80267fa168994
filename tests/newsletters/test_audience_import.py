"""`manage.py subscribers_import` and the admin upload, end to end: the formats people
have, consent from the file, suppressions from the source, counts in the last line, a
second run that adds nothing, a dry run that writes nothing, a wrong file refused."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from outlet.core.addresses import email_digest
from outlet.donations.models import Donation, Donor
from outlet.newsletters.audience import importing
from outlet.newsletters.models import (
    ConsentRecord,
    Subscriber,
    SubscriberImport,
    Subscription,
    Suppression,
)
from tests.factories import SubscriberFactory
from tests.newsletters.test_audience_formats import FIXTURES, mailchimp_zip

pytestmark = pytest.mark.django_db


def run(path: Path, *args: str) -> list[str]:
    out = io.StringIO()
    call_command("subscribers_import", str(path), *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def mailchimp_export(tmp_path) -> Path:
    path = tmp_path / "members_export_1a2b3c.zip"
    path.write_bytes(mailchimp_zip())
    return path


@pytest.fixture
def already_here(daily):
    """An address on the list and one suppressed here, both also in the Mailchimp file."""
    SubscriberFactory(email="onlist@example.org", newsletters=[daily])
    Suppression.objects.create(
        email_hash=email_digest("suppressed-here@example.org"),
        reason=Suppression.Reason.COMPLAINT,
    )


def test_a_mailchimp_zip_imports_with_consent_from_the_file_and_suppressions(
    daily, weekly, already_here, mailchimp_export
):
    lines = run(mailchimp_export, "--newsletter", "daily", "--newsletter", "weekly")

    assert lines[-1] == (
        "subscribers_import: format=mailchimp imported=3 suppressed=4 refused=1 duplicates=2"
    )
    assert not mail.outbox  # no confirmation storm
    imported = Subscriber.objects.filter(source=Subscriber.Source.IMPORT)
    assert sorted(imported.values_list("email", flat=True)) == [
        "ada@example.org", "bob@example.org", "zoe@example.org",
    ]  # fmt: skip
    assert set(imported.values_list("status", flat=True)) == {Subscriber.Status.ACTIVE}
    assert Subscription.objects.filter(subscriber__in=imported).count() == 6

    ada = ConsentRecord.objects.get(subscriber__email="ada@example.org")
    assert ada.kind == ConsentRecord.Kind.IMPORT
    assert ada.opted_in_at == datetime(2019, 5, 12, 10, 11, 12, tzinfo=UTC)
    assert ada.opted_in_ip == "203.0.113.5"
    assert ada.confirmed_at == datetime(2019, 5, 12, 10, 15, tzinfo=UTC)
    assert ada.confirmed_ip == "203.0.113.6"
    assert "Mailchimp export “members_export_1a2b3c.zip”" in ada.source
    assert "labels: Founding readers" in ada.source
    assert ada.newsletters == "The Daily Briefing, The Weekly Analysis"
    bob = ConsentRecord.objects.get(subscriber__email="bob@example.org")
    assert (bob.opted_in_at, bob.opted_in_ip, bob.confirmed_ip) == (None, None, "2001:db8::7")
    assert Subscriber.objects.get(email="zoe@example.org").name == "Zoë Ørsted"

    reasons = dict(Suppression.objects.values_list("email_hash", "reason"))
    assert reasons == {
        email_digest("suppressed-here@example.org"): Suppression.Reason.COMPLAINT,  # kept
        email_digest("gone@example.org"): Suppression.Reason.UNSUBSCRIBED,
        email_digest("left@example.org"): Suppression.Reason.UNSUBSCRIBED,
        email_digest("bounced@example.org"): Suppression.Reason.CLEANED,
    }
    for address in ("gone@example.org", "left@example.org", "bounced@example.org"):
        assert not Subscriber.objects.filter(email=address).exists()
    assert any("line 5 ADA@Example.org: duplicate" in line for line in lines)
    assert any("not-an-address: invalid" in line for line in lines)
    assert any("gone@example.org: suppressed: Unsubscribed at Mailchimp" in line for line in lines)
    assert any("bounced@example.org: suppressed: Cleaned" in line for line in lines)
    assert any("suppressed-here@example.org: suppressed: On the suppression list" in line
               for line in lines)  # fmt: skip


def test_a_second_run_of_the_same_file_adds_nothing_and_counts_duplicates(
    daily, already_here, mailchimp_export
):
    run(mailchimp_export, "--newsletter", "daily")
    before = (
        Subscriber.objects.count(),
        Subscription.objects.count(),
        ConsentRecord.objects.count(),
        Suppression.objects.count(),
    )

    lines = run(mailchimp_export, "--newsletter", "daily")

    assert lines[-1] == (
        "subscribers_import: format=mailchimp imported=0 suppressed=4 refused=1 duplicates=5"
    )
    after = (
        Subscriber.objects.count(),
        Subscription.objects.count(),
        ConsentRecord.objects.count(),
        Suppression.objects.count(),
    )
    assert after == before


def test_an_address_suppressed_here_is_never_resubscribed_by_an_import(daily, tmp_path):
    Suppression.objects.create(
        email_hash=email_digest("reader@example.net"), reason=Suppression.Reason.HARD_BOUNCE
    )
    lines = run(FIXTURES / "email_list.outlet-weekly.csv", "--newsletter", "daily")
    assert not Subscriber.objects.filter(email="reader@example.net").exists()
    assert any("reader@example.net: suppressed: On the suppression list." in x for x in lines)
    assert Suppression.objects.get(email_hash=email_digest("reader@example.net")).reason == (
        Suppression.Reason.HARD_BOUNCE
    )


def test_a_substack_export_keeps_stripe_customers_on_consent_and_suppresses_disabled_email(
    daily, already_here
):
    lines = run(
        FIXTURES / "email_list.outlet-weekly.csv",
        "--newsletter", "daily",
        "--consent", "Subscribed on our Substack, 2020-2025",
    )  # fmt: skip

    assert lines[-1] == (
        "subscribers_import: format=substack imported=5 suppressed=1 refused=1 duplicates=2"
    )
    off = Suppression.objects.get(email_hash=email_digest("off@example.net"))
    assert off.reason == Suppression.Reason.EMAIL_DISABLED
    assert "Substack" in off.detail
    assert not Subscriber.objects.filter(email="off@example.net").exists()
    paid = ConsentRecord.objects.get(subscriber__email="paid@example.net")
    assert "plan: paid" in paid.source
    assert "Stripe customer: cus_PAID123" in paid.source
    assert paid.text_shown == "Subscribed on our Substack, 2020-2025"
    assert paid.opted_in_at == datetime(2022, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert not Donor.objects.exists() and not Donation.objects.exists()  # none invented
    assert any("Stripe customer ids kept on 3 consent records" in line for line in lines)


def test_a_ghost_export_in_utf16_suppresses_unsubscribed_members(daily):
    lines = run(FIXTURES / "ghost-members-utf16.csv", "--newsletter", "daily")

    assert lines[-1] == (
        "subscribers_import: format=ghost imported=2 suppressed=1 refused=0 duplicates=0"
    )
    member = ConsentRecord.objects.get(subscriber__email="member@example.com")
    assert "labels: VIP, Early" in member.source
    assert "newsletters: Weekly, Daily" in member.source
    assert Subscriber.objects.get(email="member@example.com").name == "Mem Ber Ünïcode"
    assert Suppression.objects.get().reason == Suppression.Reason.UNSUBSCRIBED


def test_chunks_and_resumes_give_the_same_outcome(daily, monkeypatch, mailchimp_export):
    """Read and run two rows at a time, crashing once midway: the run resumes and the
    counts are those of a run in one go."""
    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 2)
    real_chunk, calls = importing._import_chunk, {"n": 0}

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker lost")
        return real_chunk(*args, **kwargs)

    monkeypatch.setattr(importing, "_import_chunk", crash_on_third)
    with pytest.raises(RuntimeError):
        run(mailchimp_export, "--newsletter", "daily")
    job = SubscriberImport.objects.get()
    assert job.status == SubscriberImport.Status.FAILED
    assert job.processed_rows == 4

    importing.subscriber_import_run(job=job)
    from outlet.newsletters.audience.report import subscriber_import_last_line

    job.refresh_from_db()
    assert subscriber_import_last_line(job=job) == (
        "subscribers_import: format=mailchimp imported=5 suppressed=3 refused=1 duplicates=1"
    )  # without already_here, onlist and suppressed-here are new addresses
    assert ConsentRecord.objects.count() == 5
    assert Suppression.objects.count() == 3


def test_a_dry_run_prints_the_report_and_writes_nothing(daily, already_here, mailchimp_export):
    before = (Subscriber.objects.count(), Suppression.objects.count())

    lines = run(mailchimp_export, "--newsletter", "daily", "--dry-run")

    assert lines[-2] == "Dry run: nothing was written."
    assert lines[-1] == (
        "subscribers_import: format=mailchimp imported=3 suppressed=4 refused=1 duplicates=2"
    )
    assert (Subscriber.objects.count(), Suppression.objects.count()) == before
    assert not SubscriberImport.objects.exists()
    assert not ConsentRecord.objects.filter(kind=ConsentRecord.Kind.IMPORT).exists()


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"title,body\nHello,World\n", [], "include \u201cemail\u201d"),
        (b"", [], "empty"),
        ((FIXTURES / "plain-list.csv").read_bytes(), ["--format", "ghost"], "not a Ghost"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", [], "binary"),
    ],
)
def test_a_wrong_file_is_refused_clearly_and_nothing_is_written(
    daily, tmp_path, content, args, message
):
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        run(path, "--newsletter", "daily", *args)
    assert not SubscriberImport.objects.exists()
    assert not Subscriber.objects.exists()


def test_an_unknown_newsletter_or_a_missing_file_is_refused(daily, tmp_path):
    with pytest.raises(CommandError, match="No newsletter with the slug nope"):
        run(FIXTURES / "plain-list.csv", "--newsletter", "nope")
    with pytest.raises(CommandError, match="no such file"):
        run(tmp_path / "missing.csv", "--newsletter", "daily")


@pytest.fixture
def editor_client(client):
    user = User.objects.create_superuser("editor", "editor@outlet.test", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_the_admin_upload_recognises_a_mailchimp_zip_and_shows_the_counts(
    editor_client, daily, already_here
):
    url = reverse("admin:newsletters_subscriber_import")
    page = editor_client.get(url).content.decode()
    assert 'value="auto" selected' in page or 'value="auto" checked' in page

    response = editor_client.post(
        url,
        {
            "file": SimpleUploadedFile("members_export.zip", mailchimp_zip()),
            "format": "auto",
            "newsletters": [daily.pk],
            "consent_text": "Signed up on our Mailchimp forms, double opt-in",
            "consent_confirmed": "on",
        },
        follow=True,
    )

    content = response.content.decode()
    assert response.status_code == 200
    job = SubscriberImport.objects.get()
    assert job.format == SubscriberImport.Format.MAILCHIMP
    assert "Mailchimp audience export" in content
    assert "Imported 3, suppressed 4, refused 1, duplicates 2." in content
    ada = ConsentRecord.objects.get(subscriber__email="ada@example.org")
    assert ada.text_shown == "Signed up on our Mailchimp forms, double opt-in"
    assert ada.opted_in_ip == "203.0.113.5"


def test_the_admin_upload_refuses_a_file_not_of_the_chosen_format(editor_client, daily):
    response = editor_client.post(
        reverse("admin:newsletters_subscriber_import"),
        {
            "file": SimpleUploadedFile("plain.csv", (FIXTURES / "plain-list.csv").read_bytes()),
            "format": "substack",
            "newsletters": [daily.pk],
            "consent_text": "Old list",
            "consent_confirmed": "on",
        },
    )
    assert response.status_code == 200
    assert "This is not a Substack subscriber export" in response.content.decode()
    assert not SubscriberImport.objects.exists()


def test_an_imported_readers_consent_shows_where_it_came_from(
    editor_client, daily, mailchimp_export
):
    run(mailchimp_export, "--newsletter", "daily")
    ada = Subscriber.objects.get(email="ada@example.org")

    page = editor_client.get(reverse("admin:newsletters_subscriber_change", args=[ada.pk]))
    content = page.content.decode()
    assert "Mailchimp export “members_export_1a2b3c.zip”" in content
    assert "from 203.0.113.5" in content and "from 203.0.113.6" in content

    export = editor_client.get(reverse("admin:newsletters_subscriber_data_export", args=[ada.pk]))
    record = export.json()["consent_records"][0]
    assert record["opted_in_ip"] == "203.0.113.5"
    assert record["confirmed_at"].startswith("2019-05-12")
    assert record["source"].startswith("Mailchimp export")


def _csv(tmp_path, text: str) -> Path:
    path = tmp_path / "list.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_status_word_the_import_does_not_know_is_refused_not_subscribed(daily, tmp_path):
    path = _csv(
        tmp_path,
        "email,status\nkept@example.org,subscribed\nodd@example.org,pending-review\n",
    )

    lines = run(path, "--newsletter", "daily")

    assert Subscriber.objects.filter(email="kept@example.org").exists()
    assert not Subscriber.objects.filter(email="odd@example.org").exists()
    assert not Suppression.objects.filter(email_hash=email_digest("odd@example.org")).exists()
    assert any("odd@example.org: invalid:" in line for line in lines), lines


def test_a_subscriber_an_earlier_import_added_is_withdrawn_when_a_newer_export_says_unsubscribed(
    daily, tmp_path
):
    SubscriberFactory(
        email="moved@example.org", newsletters=[daily], source=Subscriber.Source.IMPORT
    )
    path = _csv(tmp_path, "email,status\nmoved@example.org,unsubscribed\n")

    lines = run(path, "--newsletter", "daily")

    assert Subscriber.objects.get(email="moved@example.org").status != Subscriber.Status.ACTIVE
    assert Suppression.objects.filter(email_hash=email_digest("moved@example.org")).exists()
    assert any("moved@example.org: suppressed:" in line for line in lines), lines


def test_a_reader_who_signed_up_here_stays_whatever_an_old_export_says(daily, tmp_path):
    SubscriberFactory(email="here@example.org", newsletters=[daily], source=Subscriber.Source.FORM)
    path = _csv(tmp_path, "email,status\nhere@example.org,unsubscribed\n")

    lines = run(path, "--newsletter", "daily")

    assert Subscriber.objects.get(email="here@example.org").status == Subscriber.Status.ACTIVE
    assert not Suppression.objects.filter(email_hash=email_digest("here@example.org")).exists()
    assert any("here@example.org: exists:" in line and "signed up here" in line for line in lines)
