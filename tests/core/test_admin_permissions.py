"""Every admin address refuses staff who lack the permission for what it shows.

The walk enumerates the admin's own URL patterns (every model admin's, custom views
included), fills them with real object ids, and asks each one, by GET and by POST, as a
staff user with no permissions at all: a new custom view that forgets its check fails
here without anyone having to remember to add a test for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import URLPattern, URLResolver, reverse

from outlet.articles.models import ArticleImage, ArticleRevision
from outlet.donations.models import DonorEmail, StripeEvent
from outlet.importers.models import ArchiveImport, ImportedItem
from outlet.newsletters.bounces.models import BounceMessage
from outlet.newsletters.models import Subscriber, SubscriberImport, Suppression
from outlet.pages.models import Page
from outlet.readers.models import Reader
from outlet.redirects.models import Redirect
from tests.factories import (
    AppealFactory,
    ArticleFactory,
    CampaignFactory,
    DonationFactory,
    GiftFactory,
    IssueFactory,
    NewsletterFactory,
    SubscriberFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db

#: Admin pages every staff member may open: they show nothing of readers or donors
#: ("view on site" only redirects to the object's public page, which guards itself).
OPEN_TO_ALL_STAFF = {
    "index", "login", "logout", "jsi18n", "password_change", "password_change_done",
    "view_on_site",
}  # fmt: skip
#: An app's index for someone who may see none of its models is "not found" (Django's).
NOT_FOUND_IS_REFUSAL = {"app_list"}
#: Django's own answer for an object its queryset hides from this user: back to the index.
HIDDEN_OBJECT_IS_REFUSAL = {"articles_article_history"}


@dataclass(frozen=True)
class AdminAddress:
    name: str
    url: str


def _rows() -> dict[type[models.Model], models.Model]:
    """One real row of every model the admin shows, with readers' and donors' data in it."""
    newsletter = NewsletterFactory()
    subscriber = SubscriberFactory(email="private-reader@example.com", newsletters=[newsletter])
    article = ArticleFactory()
    article.tags.add(TagFactory())
    gift = GiftFactory(donor__email="private-donor@example.com")
    donation = DonationFactory(donor=gift.donor, gift=gift)
    job = SubscriberImport.objects.create(filename="list.csv", consent_text="Signed up at a talk")
    job.newsletters.add(newsletter)
    group = Group.objects.create(name="Contributors")
    rows: list[models.Model] = [
        article,
        article.section,
        article.bylines.first().author,
        article.tags.first(),
        AppealFactory(),
        ArticleRevision.objects.create(article=article, headline="Before", body="<p>Old</p>"),
        ArticleImage.objects.create(
            image="body/2026/01/photo.jpg", width=1, height=1, alt_text="A photo"
        ),
        Reader.objects.create(email="private-donor@example.com"),
        gift,
        gift.donor,
        donation,
        CampaignFactory(),
        StripeEvent.objects.create(event_id="evt_walk", type="charge.refunded"),
        DonorEmail.objects.create(kind=DonorEmail.Kind.RECEIPT, donor=gift.donor),
        newsletter,
        subscriber,
        Suppression.objects.create(email_hash="0" * 64, reason=Suppression.Reason.COMPLAINT),
        BounceMessage.objects.create(
            key="0" * 64, source="pipe", outcome="unparsed", raw=b"To: private-reader@example.com"
        ),
        job,
        IssueFactory(newsletter=newsletter, articles=[article]),
        group,
        User.objects.create_user("someone", "someone@example.com", "pw-for-tests-only"),
        Page.objects.create(title="About us", slug="about"),
        Redirect.objects.create(old_path="/2019/05/12/old/", target=article.get_absolute_url()),
        ImportedItem.objects.create(source="wordpress:walk", kind="article", source_id="1"),
        ArchiveImport.objects.create(upload="imports/walk.xml"),
    ]
    return {type(row): row for row in rows}


def _arguments(
    route_arguments: list[str], model: type[models.Model] | None, rows: dict
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in route_arguments:
        if name in ("object_id", "pk", "id") and model is not None:
            values[name] = rows[model].pk
        elif name == "import_id":
            values[name] = rows[SubscriberImport].pk
        elif name == "article_id":
            values[name] = rows[ArticleRevision].article_id
        elif name == "revision_id":
            values[name] = rows[ArticleRevision].pk
        elif name == "action":
            values[name] = "send"
        elif name == "content_type_id":
            values[name] = ContentType.objects.get_for_model(Subscriber).pk
        elif name == "object_id":
            values[name] = rows[Subscriber].pk
        elif name == "app_label":
            values[name] = "newsletters"
        else:
            raise AssertionError(f"The walk does not know what to pass as <{name}>: teach it.")
    return values


def _patterns(
    patterns: list, model: type[models.Model] | None
) -> Iterator[tuple[URLPattern, type[models.Model] | None]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            continue  # each model admin's own patterns are walked with their model below
        yield pattern, model


def admin_addresses(rows: dict) -> list[AdminAddress]:
    """Every named admin URL, with real ids in it."""
    found: list[tuple[URLPattern, type[models.Model] | None]] = list(
        _patterns(admin.site.get_urls(), None)
    )
    for model, model_admin in admin.site._registry.items():
        assert model in rows, f"The admin shows {model.__name__}: add one to _rows()."
        found += _patterns(model_admin.get_urls(), model)
    addresses = []
    for pattern, model in found:
        if pattern.name is None:
            continue  # Django's "redirect the old <id>/ address to <id>/change/"
        arguments = _arguments(list(pattern.pattern.regex.groupindex), model, rows)
        addresses.append(
            AdminAddress(pattern.name, reverse(f"admin:{pattern.name}", kwargs=arguments))
        )
    return addresses


@pytest.fixture
def staff_without_permissions(client):
    user = User.objects.create_user("contributor", "c@outlet.test", "pw", is_staff=True)
    client.force_login(user)
    return client


def _refused(name: str, response) -> bool:
    if response.status_code in (403, 405):
        return True
    if response.status_code == 404 and name in NOT_FOUND_IS_REFUSAL:
        return True
    if response.status_code != 302:
        return False
    if name in HIDDEN_OBJECT_IS_REFUSAL and response["Location"] == reverse("admin:index"):
        return True
    return response["Location"].startswith(reverse("admin:login"))


def test_staff_without_permissions_are_refused_every_admin_page_but_the_index(
    staff_without_permissions,
):
    rows = _rows()
    addresses = [a for a in admin_addresses(rows) if a.name not in OPEN_TO_ALL_STAFF]
    assert len(addresses) > 100  # every model admin's pages, not only the custom ones

    let_through = []
    for address in addresses:
        for method in ("get", "post"):
            response = getattr(staff_without_permissions, method)(address.url)
            if not _refused(address.name, response):
                let_through.append(
                    f"{method.upper()} {address.url} ({address.name}): {response.status_code}"
                )
    assert let_through == [], "\n".join(let_through)
    assert Subscriber.objects.filter(email="private-reader@example.com").exists()


def test_the_open_pages_show_no_reader_or_donor(staff_without_permissions):
    rows = _rows()
    for address in admin_addresses(rows):
        if address.name in OPEN_TO_ALL_STAFF and address.name != "logout":
            content = staff_without_permissions.get(address.url).content
            assert b"private-reader@example.com" not in content, address.url
            assert b"private-donor@example.com" not in content, address.url


def test_the_donation_export_refuses_staff_who_may_not_see_donations(staff_without_permissions):
    DonationFactory(donor__email="private-donor@example.com")
    url = reverse("admin:donations_donation_changelist")
    response = staff_without_permissions.get(url, {"export": "csv"})
    assert response.status_code == 403
    assert b"private-donor@example.com" not in b"".join(
        getattr(response, "streaming_content", [response.content])
    )


def test_anonymous_visitors_are_sent_to_sign_in_from_every_admin_page(client):
    rows = _rows()
    for address in admin_addresses(rows):
        if address.name in ("login", "logout", "jsi18n", "view_on_site"):
            continue
        response = client.get(address.url)
        assert _refused(address.name, response), address.url


def test_a_contributor_downloads_no_subscriber_data_nor_an_imports_addresses(client):
    from tests.articles.conftest import _member

    rows = _rows()
    client.force_login(_member("connie", "contributor"))
    subscriber, job = rows[Subscriber], rows[SubscriberImport]

    for url in (
        reverse("admin:newsletters_subscriber_data_export", args=[subscriber.pk]),
        reverse("admin:newsletters_subscriber_import_detail", args=[job.pk]),
        reverse("admin:newsletters_subscriber_import_report", args=[job.pk]),
        reverse("admin:newsletters_subscriber_export"),
    ):
        response = client.get(url)
        assert response.status_code == 403, url
    assert client.get(reverse("admin:articles_article_changelist")).status_code == 200
