"""A large CSV import queued from the admin runs on a real Celery worker."""

import time

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from outlet.newsletters.models import Subscriber, SubscriberImport
from tests.factories import NewsletterFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_large_import_runs_on_the_worker_and_the_page_shows_progress(
    client, settings, celery_worker_process
):
    settings.NEWSLETTER_IMPORT_INLINE_ROWS = 100
    daily = NewsletterFactory(slug="daily")
    client.force_login(User.objects.create_superuser("editor", "e@outlet.test", "pw-tests"))
    rows = b"".join(b"reader%d@example.com\n" % n for n in range(3000))
    response = client.post(
        reverse("admin:newsletters_subscriber_import"),
        {
            "file": SimpleUploadedFile("big.csv", b"email\n" + rows + b"broken\n"),
            "newsletters": [daily.pk],
            "consent_text": "Old newsletter tool",
            "consent_confirmed": "on",
        },
    )
    assert response.status_code == 302
    job = SubscriberImport.objects.get()

    deadline = time.monotonic() + 60
    while job.status != SubscriberImport.Status.DONE and time.monotonic() < deadline:
        time.sleep(0.3)
        job.refresh_from_db()
    assert job.status == SubscriberImport.Status.DONE, celery_worker_process.log_path.read_text()
    assert job.imported_rows == 3000
    assert job.summary == {"imported": 3000, "invalid": 1}
    assert Subscriber.objects.filter(source="import").count() == 3000
    page = client.get(response["Location"]).content.decode()
    assert "3,001 of 3,001 rows checked, 3,000 imported" in page
    assert "broken" in page
