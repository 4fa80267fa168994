"""Editors' audience tools in the admin: overview, export, erasure, import."""

import json

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from outlet.core.addresses import email_digest
from outlet.newsletters.models import ConsentRecord, Subscriber, SubscriberImport, Suppression
from outlet.newsletters.services import subscriber_signup, subscriber_unsubscribe
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(client):
    user = User.objects.create_superuser("editor", "editor@outlet.test", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_changelist_shows_counts_per_newsletter_and_a_daily_chart(editor_client, daily, weekly):
    SubscriberFactory(newsletters=[daily, weekly])
    SubscriberFactory(newsletters=[daily])
    gone = SubscriberFactory(newsletters=[weekly])
    subscriber_unsubscribe(subscriber=gone)
    subscriber_signup(email="pending@example.com", newsletters=[weekly])

    response = editor_client.get(reverse("admin:newsletters_subscriber_changelist"))
    assert response.status_code == 200
    counts = {
        n.slug: (n.active_count, n.pending_count) for n in response.context["newsletter_counts"]
    }
    assert counts == {"daily": (2, 0), "weekly": (1, 1)}
    assert response.context["chart_totals"] == (4, 1)
    assert b"<svg" in response.content
    assert (
        b"style="
        not in response.content.split(b'class="audience-report"')[1].split(b"</figure>")[0]
    )


def test_changelist_filters_by_newsletter_status_and_search(editor_client, daily, weekly):
    SubscriberFactory(email="daily-reader@example.com", newsletters=[daily])
    SubscriberFactory(email="weekly-reader@example.com", newsletters=[weekly])
    url = reverse("admin:newsletters_subscriber_changelist")
    response = editor_client.get(url, {"subscriptions__newsletter__id__exact": daily.pk})
    assert [s.email for s in response.context["cl"].result_list] == ["daily-reader@example.com"]
    response = editor_client.get(url, {"q": "weekly-reader"})
    assert [s.email for s in response.context["cl"].result_list] == ["weekly-reader@example.com"]
    response = editor_client.get(url, {"donor": "yes"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_csv_export_streams_the_filtered_subscribers(editor_client, daily):
    SubscriberFactory(email="a@example.com", newsletters=[daily])
    SubscriberFactory(email="b@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    response = editor_client.get(
        reverse("admin:newsletters_subscriber_export"), {"status__exact": "active"}
    )
    assert response.status_code == 200
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    lines = text.strip().splitlines()
    assert lines[0].startswith("email,name,status,source,newsletters")
    assert len(lines) == 2
    assert lines[1].startswith("a@example.com,,active,form,daily,")


def test_json_export_holds_everything_about_one_address(editor_client, daily):
    subscriber = subscriber_signup(
        email="me@example.com", newsletters=[daily], page_url="http://x/y/", ip="192.0.2.9"
    )
    response = editor_client.get(
        reverse("admin:newsletters_subscriber_data_export", args=[subscriber.pk])
    )
    data = json.loads(response.content)
    assert data["email"] == "me@example.com"
    assert data["subscriptions"][0]["newsletter"] == "The Daily Briefing"
    assert data["consent_records"][0]["ip"] == "192.0.2.9"
    assert "me@example.com" not in response["Content-Disposition"]


def test_erase_keeps_only_a_hash_and_blocks_reimport(editor_client, daily):
    subscriber = subscriber_signup(email="forget-me@example.com", newsletters=[daily])
    url = reverse("admin:newsletters_subscriber_erase", args=[subscriber.pk])
    assert b"forget-me@example.com" in editor_client.get(url).content  # confirmation page
    assert Subscriber.objects.exists()

    response = editor_client.post(url)
    assert response.status_code == 302
    assert not Subscriber.objects.exists()
    assert not ConsentRecord.objects.exists()
    suppression = Suppression.objects.get()
    assert suppression.email_hash == email_digest("forget-me@example.com")
    assert suppression.reason == Suppression.Reason.ERASED

    editor_client.post(
        reverse("admin:newsletters_subscriber_import"),
        {
            "file": SimpleUploadedFile("again.csv", b"email\nForget-Me@example.com\n"),
            "newsletters": [daily.pk],
            "consent_text": "old list",
            "consent_confirmed": "on",
        },
    )
    assert not Subscriber.objects.exists()
    assert SubscriberImport.objects.get().summary == {"suppressed": 1}

    subscriber_signup(email="forget-me@example.com", newsletters=[daily])
    assert not Subscriber.objects.exists()


def test_admin_import_of_a_small_file_runs_at_once_and_shows_the_report(editor_client, daily):
    SubscriberFactory(email="known@example.com")
    data = b"email,name\nnew@example.com,New\nnot-an-address,Bad\nknown@example.com,Known\n"
    response = editor_client.post(
        reverse("admin:newsletters_subscriber_import"),
        {
            "file": SimpleUploadedFile("list.csv", data, content_type="text/csv"),
            "newsletters": [daily.pk],
            "consent_text": "Signed up on our old form",
            "consent_confirmed": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "Done" in content
    assert "not-an-address" in content
    assert "Already in the database" in content
    assert Subscriber.objects.get(email="new@example.com").status == Subscriber.Status.ACTIVE

    job = SubscriberImport.objects.get()
    report = editor_client.get(reverse("admin:newsletters_subscriber_import_report", args=[job.pk]))
    lines = b"".join(report.streaming_content).decode().splitlines()
    assert lines == [
        "line,email,outcome,message",
        "2,new@example.com,imported,",
        "3,not-an-address,invalid,Enter a valid email address.",
        "4,known@example.com,exists,Already in the database; unchanged.",
    ]


def test_admin_import_of_a_file_uploaded_to_disk_with_any_line_endings(
    editor_client, daily, settings
):
    """A large upload reaches the view as a temporary file on disk (not in memory),
    and is read from there a chunk at a time; old Mac and Windows line endings work."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10
    data = b'email,name\r\nwin@example.com,Win\r\nmac@example.com,"Mac\rOS"\rlf@example.com,LF\n'
    response = editor_client.post(
        reverse("admin:newsletters_subscriber_import"),
        {
            "file": SimpleUploadedFile("list.csv", data, content_type="text/csv"),
            "newsletters": [daily.pk],
            "consent_text": "Signed up on our old form",
            "consent_confirmed": "on",
        },
    )
    assert response.status_code == 302
    assert dict(Subscriber.objects.values_list("email", "name")) == {
        "win@example.com": "Win",
        "mac@example.com": "Mac\rOS",
        "lf@example.com": "LF",
    }


def test_admin_import_without_consent_or_with_wrong_columns_changes_nothing(editor_client, daily):
    url = reverse("admin:newsletters_subscriber_import")
    no_consent = editor_client.post(
        url,
        {
            "file": SimpleUploadedFile("a.csv", b"email\nx@example.com\n"),
            "newsletters": [daily.pk],
            "consent_text": "?",
        },
    )
    assert b"You can only import people who consented" in no_consent.content
    wrong_columns = editor_client.post(
        url,
        {
            "file": SimpleUploadedFile("a.csv", b"mail,who\nx@example.com,X\n"),
            "newsletters": [daily.pk],
            "consent_text": "old form",
            "consent_confirmed": "on",
        },
    )
    assert b"must name the columns" in wrong_columns.content
    assert not Subscriber.objects.exists()
    assert not SubscriberImport.objects.exists()


def test_large_admin_import_runs_in_a_task_with_progress(
    editor_client, daily, settings, eager_tasks, django_capture_on_commit_callbacks
):
    settings.NEWSLETTER_IMPORT_INLINE_ROWS = 2
    data = b"email\n" + b"".join(b"r%d@example.com\n" % n for n in range(5))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = editor_client.post(
            reverse("admin:newsletters_subscriber_import"),
            {
                "file": SimpleUploadedFile("big.csv", data),
                "newsletters": [daily.pk],
                "consent_text": "old form",
                "consent_confirmed": "on",
            },
        )
    job = SubscriberImport.objects.get()
    progress = editor_client.get(response["Location"])
    assert b'http-equiv="refresh"' in progress.content
    assert b"0 of 5 rows" in progress.content
    assert not Subscriber.objects.exists()

    for callback in callbacks:
        callback()  # the task, run in-process
    job.refresh_from_db()
    assert job.status == SubscriberImport.Status.DONE
    assert Subscriber.objects.count() == 5
    done = editor_client.get(response["Location"])
    assert b'http-equiv="refresh"' not in done.content


def test_a_new_newsletter_appears_in_cached_sign_up_boxes_at_once(
    editor_client, client, daily, settings, django_capture_on_commit_callbacks
):
    from django.test import Client

    from tests.factories import ArticleFactory

    settings.CACHE_MIDDLEWARE_SECONDS = 300
    article = ArticleFactory()
    reader = Client()
    assert b"The Daily Briefing" in reader.get(article.get_absolute_url()).content
    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.post(
            reverse("admin:newsletters_newsletter_add"),
            {
                "name": "Election Night",
                "slug": "election-night",
                "from_name": "The Outlet",
                "from_email": "election@outlet.test",
                "visibility": "public",
                "is_active": "on",
                "position": 5,
            },
        )
    assert response.status_code == 302
    assert b"Election Night" in reader.get(article.get_absolute_url()).content


def test_csv_export_defuses_spreadsheet_formulas_typed_into_names(editor_client, daily):
    SubscriberFactory(email="f@example.com", name='=HYPERLINK("http://evil")', newsletters=[daily])

    response = editor_client.get(reverse("admin:newsletters_subscriber_export"))

    text = b"".join(response.streaming_content).decode()
    assert ",'=HYPERLINK(" in text.replace('"', "")
    assert ",=HYPERLINK(" not in text.replace('"', "")
