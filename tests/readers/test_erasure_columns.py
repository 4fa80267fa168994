"""After an erasure, no text column of any table holds the address: every model's
character, text, email and JSON columns are read back (introspected, so a column added
later is checked too), for a reader who was imported, refused by a later import, gave,
subscribed, signed in and was edited by staff."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models
from django.test import Client
from django.urls import reverse

from outlet.donations.models import Donation, Donor
from outlet.newsletters.audience.importing import subscriber_import_create, subscriber_import_run
from outlet.newsletters.models import Subscriber
from outlet.readers.models import Reader
from tests.factories import DonationFactory, DonorFactory, GiftFactory, NewsletterFactory

from .conftest import signed_in

pytestmark = pytest.mark.django_db

ADDRESS = "reader@example.com"
TEXT_COLUMNS = (models.CharField, models.TextField, models.JSONField)  # EmailField is a CharField


def columns_holding(address: str) -> list[str]:
    """Every `app.Model.field` whose column holds `address` in any row (case ignored)."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, TEXT_COLUMNS):
                lookup = {f"{field.attname}__icontains": address}
                if model._default_manager.filter(**lookup).exists():
                    found.append(f"{model._meta.label}.{field.name}")
    return found


def import_file(text: str, newsletter):
    job = subscriber_import_create(
        data=text.encode(), filename="old-list.csv", newsletters=[newsletter],
        consent_confirmed=True, consent_text="Signed up on our old form",
    )  # fmt: skip
    return subscriber_import_run(job=job)


@pytest.fixture
def reader_everywhere(stripe_agrees, django_user_model):
    """The address in every place the outlet keeps one."""
    daily = NewsletterFactory(name="Daily", slug="daily")
    import_file("email,name\n Reader@Example.com ,Ada Reader\nother@example.com,Other\n", daily)
    refused = import_file(f"email,name\n{ADDRESS.upper()},Ada again\n", daily)
    assert refused.summary == {"exists": 1}
    gift = GiftFactory(donor=DonorFactory(email=ADDRESS, name="Ada Reader"))
    DonationFactory(donor=gift.donor, gift=gift, frequency="month", status="paid",
                    public_credit=True, public_name="Ada R.")  # fmt: skip
    DonationFactory(donor=gift.donor, status="pending")  # an abandoned checkout
    editor = Client()
    editor.force_login(django_user_model.objects.create_superuser("ed", "ed@x.test", "pw"))
    editor.post(reverse("admin:readers_reader_add"), {"email": ADDRESS})
    donor = Donor.objects.get(email=ADDRESS)
    editor.post(
        reverse("admin:donations_donor_change", args=[donor.pk]),
        {"email": donor.email, "name": "Ada Q. Reader"},
    )
    signed_in(ADDRESS)
    assert {"readers.Reader.email", "donations.Donor.email", "newsletters.Subscriber.email",
            "newsletters.SubscriberImportPart.rows", "newsletters.SubscriberImportRefusal.address",
            "admin.LogEntry.object_repr"} <= set(columns_holding(ADDRESS))  # fmt: skip
    return editor


def test_the_readers_own_erasure_leaves_the_address_in_no_column(reader_everywhere):
    signed_in(ADDRESS).post(reverse("readers:data-delete"), {"confirm": "on"})
    assert columns_holding(ADDRESS) == []
    assert Donation.objects.count() == 2  # kept for the receipts, nameless


def test_staff_erase_leaves_the_address_in_no_column(reader_everywhere):
    subscriber = Subscriber.objects.get(email=ADDRESS)
    page = reader_everywhere.get(
        reverse("admin:newsletters_subscriber_erase", args=[subscriber.pk])
    )
    assert "its recurring gifts are cancelled at Stripe" in page.content.decode()
    response = reader_everywhere.post(
        reverse("admin:newsletters_subscriber_erase", args=[subscriber.pk])
    )
    assert response.status_code == 302
    assert columns_holding(ADDRESS) == []
    assert not Reader.objects.filter(email=ADDRESS).exists()


def test_an_erasure_leaves_other_addresses_in_the_imports(reader_everywhere):
    signed_in(ADDRESS).post(reverse("readers:data-delete"), {"confirm": "on"})
    assert "newsletters.SubscriberImportPart.rows" in columns_holding("other@example.com")


def test_staff_who_may_not_change_donors_cannot_erase_a_donors_address(
    reader_everywhere, django_user_model
):
    from django.contrib.auth.models import Permission

    clerk = django_user_model.objects.create_user("clerk", "c@x.test", "pw", is_staff=True)
    clerk.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="newsletters",
            codename__in=["view_subscriber", "change_subscriber"],
        )
    )
    browser = Client()
    browser.force_login(clerk)
    subscriber = Subscriber.objects.get(email=ADDRESS)
    response = browser.post(reverse("admin:newsletters_subscriber_erase", args=[subscriber.pk]))
    assert response.status_code == 403
    assert Donor.objects.filter(email=ADDRESS).exists()
    assert Subscriber.objects.filter(email=ADDRESS).exists()


def test_finished_imports_forget_their_rows_after_the_retention_period(settings, stripe_agrees):
    from datetime import timedelta

    from django.utils import timezone

    from outlet.newsletters.audience.retention import subscriber_imports_expire
    from outlet.newsletters.models import SubscriberImport
    from outlet.newsletters.tasks import subscriber_imports_expire_task

    settings.NEWSLETTER_IMPORT_RETENTION_DAYS = 30
    daily = NewsletterFactory(name="Daily", slug="daily")
    old = import_file(f"email,name\n{ADDRESS},Ada\nnot-an-address,Bad\n", daily)
    recent = import_file("email,name\nrecent@example.com,Rae\n", daily)
    SubscriberImport.objects.filter(pk=old.pk).update(
        finished_at=timezone.now() - timedelta(days=31)
    )
    SubscriberImport.objects.filter(pk=recent.pk).update(
        finished_at=timezone.now() - timedelta(days=29)
    )
    subscriber_imports_expire_task.apply()
    assert subscriber_imports_expire() == 0  # a second run has nothing left to do
    old.refresh_from_db()
    assert not old.parts.exists() and old.refusals.get().address == ""
    assert (old.imported_rows, old.summary) == (1, {"imported": 1, "invalid": 1})
    assert recent.parts.exists()
    assert columns_holding("not-an-address") == []
    assert "newsletters.SubscriberImportPart.rows" in columns_holding("recent@example.com")
    assert settings.CELERY_BEAT_SCHEDULE["newsletters-imports-expire"]["task"] == (
        "newsletters.subscriber_imports_expire"
    )


def test_an_address_erased_before_its_import_reaches_it_is_not_imported(stripe_agrees):
    """Erased while the import is queued: its row is cut, so the run refuses it."""
    daily = NewsletterFactory(name="Daily", slug="daily")
    job = subscriber_import_create(
        data=f"email,name\n{ADDRESS},Ada\nnew@example.com,New\n".encode(),
        filename="list.csv", newsletters=[daily], consent_confirmed=True, consent_text="Form",
    )  # fmt: skip
    from outlet.readers.services import address_erase

    address_erase(email=ADDRESS)
    job = subscriber_import_run(job=job)
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["new@example.com"]
    assert columns_holding(ADDRESS) == []


def test_a_suppression_without_a_subscriber_loses_the_bounce_text_naming_the_address(
    stripe_agrees,
):
    """A bounce's text often quotes the address; a complaint or a bounce can suppress an
    address that has no subscriber row (a donor who never subscribed)."""
    from outlet.newsletters.models import Suppression
    from outlet.newsletters.services import email_suppress

    DonationFactory(donor=DonorFactory(email=ADDRESS), status="paid")
    email_suppress(email=ADDRESS, reason="hard_bounce", detail=f"550 5.1.1 <{ADDRESS}>: unknown")
    signed_in(ADDRESS).post(reverse("readers:data-delete"), {"confirm": "on"})
    assert columns_holding(ADDRESS) == []
    assert Suppression.objects.get().reason == "hard_bounce"  # still suppressed


def test_an_address_erased_from_an_import_is_not_imported_again_by_the_same_file(stripe_agrees):
    """The address was only in an import's file (no subscriber row): a
    re-upload of that file must not bring it back."""
    from outlet.readers.services import address_erase

    daily = NewsletterFactory(name="Daily", slug="daily")
    file = f"email,name\n{ADDRESS},Ada\n"
    job = subscriber_import_create(
        data=file.encode(), filename="list.csv", newsletters=[daily],
        consent_confirmed=True, consent_text="Form",
    )  # fmt: skip
    address_erase(email=ADDRESS)
    subscriber_import_run(job=job)
    again = import_file(file, daily)
    assert again.summary == {"suppressed": 1}
    assert not Subscriber.objects.exists()


def test_erasing_a_donor_who_was_never_on_a_list_suppresses_nothing(stripe_agrees):
    from outlet.newsletters.models import Suppression

    DonationFactory(donor=DonorFactory(email=ADDRESS), status="paid")
    signed_in(ADDRESS).post(reverse("readers:data-delete"), {"confirm": "on"})
    assert not Suppression.objects.exists()


def test_staff_erase_that_stripe_refuses_changes_nothing_and_says_so(
    reader_everywhere, monkeypatch
):
    from outlet.donations import stripe_gateway

    def refuse(**kwargs):
        raise stripe_gateway.StripeError("down")

    monkeypatch.setattr(stripe_gateway, "subscription_cancel", refuse)
    subscriber = Subscriber.objects.get(email=ADDRESS)
    response = reader_everywhere.post(
        reverse("admin:newsletters_subscriber_erase", args=[subscriber.pk]), follow=True
    )
    assert "We could not reach our payment processor" in response.content.decode()
    assert Subscriber.objects.filter(email=ADDRESS).exists()
    assert Donor.objects.filter(email=ADDRESS).exists()
    assert Reader.objects.filter(email=ADDRESS).exists()


def test_an_expired_imports_page_says_its_rows_were_deleted(reader_everywhere):
    from datetime import timedelta

    from django.utils import timezone

    from outlet.newsletters.audience.retention import subscriber_imports_expire
    from outlet.newsletters.models import SubscriberImport

    job = SubscriberImport.objects.order_by("pk").first()
    SubscriberImport.objects.filter(pk=job.pk).update(
        finished_at=timezone.now() - timedelta(days=40)
    )
    subscriber_imports_expire()
    url = reverse("admin:newsletters_subscriber_import_detail", args=[job.pk])
    page = reader_everywhere.get(url).content.decode()
    assert "The rows of this import were deleted 30 days after it finished" in page
    assert "Download the full per-row report" not in page


def test_an_erasure_cuts_the_address_out_of_refused_rows_that_wrap_it(stripe_agrees):
    """A file's email column may hold "Name <address>" or "mailto:address": refused as
    invalid, such rows still name the reader, and stay stored until the retention ends.
    Longer addresses that merely contain this one are someone else's and stay."""
    from outlet.newsletters.models import SubscriberImportPart, SubscriberImportRefusal
    from outlet.readers.services import address_erase

    daily = NewsletterFactory(name="Daily", slug="daily")
    wrapped = (
        "email,name\n"
        f'"Ada Reader <{ADDRESS.upper()}>",Ada\n'
        f"mailto:{ADDRESS},Ada\n"
        f"{ADDRESS}.,Ada\n"
        f"x{ADDRESS},Someone else\n"
        f'"Other <{ADDRESS}.org>",Other\n'
    )
    assert import_file(wrapped, daily).summary == {"imported": 1, "invalid": 4}

    address_erase(email=ADDRESS)

    refused = SubscriberImportRefusal.objects.order_by("line").values_list("address", flat=True)
    assert list(refused) == ["", "", "", f"Other <{ADDRESS}.org>"]
    rows = [row[1:] for part in SubscriberImportPart.objects.all() for row in part.rows]
    assert rows == [["", ""], ["", ""], ["", ""], [f"x{ADDRESS}", "Someone else"],
                    [f"Other <{ADDRESS}.org>", "Other"]]  # fmt: skip


def test_a_failed_import_left_alone_forgets_its_rows_after_the_retention_period(
    settings, stripe_agrees
):
    """A run that failed (and was never run again) is not finished, yet its file's
    addresses must not stay stored for ever."""
    from datetime import timedelta

    from django.utils import timezone

    from outlet.newsletters.audience.retention import subscriber_imports_expire
    from outlet.newsletters.models import SubscriberImport

    settings.NEWSLETTER_IMPORT_RETENTION_DAYS = 30
    daily = NewsletterFactory(name="Daily", slug="daily")
    abandoned = import_file(f"email,name\n{ADDRESS},Ada\nnot-an-address,Bad\n", daily)
    recent = import_file("email,name\nrecent@example.com,Rae\n", daily)
    long_ago, lately = timezone.now() - timedelta(days=31), timezone.now() - timedelta(days=29)
    SubscriberImport.objects.filter(pk=abandoned.pk).update(
        status=SubscriberImport.Status.FAILED, finished_at=None, heartbeat_at=long_ago,
        created_at=long_ago,
    )  # fmt: skip
    SubscriberImport.objects.filter(pk=recent.pk).update(
        status=SubscriberImport.Status.FAILED, finished_at=None, heartbeat_at=lately
    )

    assert subscriber_imports_expire() == 1

    abandoned.refresh_from_db()
    assert not abandoned.parts.exists() and abandoned.refusals.get().address == ""
    assert abandoned.rows_expired
    assert recent.parts.exists() and not recent.rows_expired
