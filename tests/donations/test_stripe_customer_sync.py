"""The donor's Stripe customers follow their address and name, and lose both on erasure:
sent after commit by a task, through the gateway, checked against the SDK's own types
(StubStripe); retried on temporary faults, never on a refusal."""

from __future__ import annotations

import pytest
import stripe

from outlet.donations import services, stripe_gateway
from outlet.donations.models import Gift
from outlet.donations.tasks import donor_stripe_customers_sync_task
from tests.donations.stripe_contract import StubStripe
from tests.factories import DonationFactory, DonorFactory, GiftFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stub(settings, monkeypatch):
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_DIALECT = "current"
    settings.STRIPE_SECRET_KEY = "sk_test_contract"
    transport = StubStripe()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", transport)
    return transport


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Donor ids whose sync task was queued (run by the test, as a worker would)."""
    ids: list[int] = []
    monkeypatch.setattr(donor_stripe_customers_sync_task, "delay", ids.append)
    return ids


def customer(stub: StubStripe, *, email: str, name: str) -> str:
    return stub._store("customer", "cus", email=email, name=name)["id"]


def updates(stub: StubStripe) -> list[tuple[str, dict]]:
    return [(r.path, r.params) for r in stub.requests if r.method == "post"]


@pytest.fixture
def donor_with_two_customers(stub):
    donor = DonorFactory(email="ada@example.org", name="Ada Lovelace")
    once = customer(stub, email="ada@example.org", name="Ada Lovelace")
    monthly = customer(stub, email="ada@example.org", name="Ada Lovelace")
    DonationFactory(donor=donor, stripe_customer_id=once, status="paid")
    DonationFactory(donor=donor, stripe_customer_id=once, status="paid")  # same customer
    gift = GiftFactory(donor=donor, stripe_customer_id=monthly, status=Gift.Status.CANCELLED)
    DonationFactory(donor=donor, gift=gift, stripe_customer_id=monthly, status="paid")
    return donor, once, monthly


def test_a_changed_address_reaches_each_stripe_customer_after_commit(
    stub, queued, donor_with_two_customers, django_capture_on_commit_callbacks
):
    donor, once, monthly = donor_with_two_customers
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.donor_email_change(donor=donor, email="Ada@New.example")
        assert stub.requests == []  # never inside the transaction
    for callback in callbacks:
        callback()
    assert queued == [donor.pk]

    donor_stripe_customers_sync_task.apply(args=[donor.pk])
    donor_stripe_customers_sync_task.apply(args=[donor.pk])  # run twice: the same request

    assert stub.problems == []
    sent = {"email": "ada@new.example", "name": "Ada Lovelace"}
    assert updates(stub) == [(f"/v1/customers/{c}", sent) for c in (once, monthly)] * 2
    for customer_id in (once, monthly):
        assert stub.objects[customer_id]["email"] == "ada@new.example"


def test_erasure_clears_the_stripe_customers_email_and_name(
    stub, queued, donor_with_two_customers, django_capture_on_commit_callbacks
):
    from outlet.readers.services import address_erase

    donor, once, monthly = donor_with_two_customers
    with django_capture_on_commit_callbacks(execute=True):
        address_erase(email="ada@example.org")
    assert queued == [donor.pk]

    donor_stripe_customers_sync_task.apply(args=[donor.pk])

    assert stub.problems == []
    assert updates(stub) == [
        (f"/v1/customers/{c}", {"email": "", "name": ""}) for c in (once, monthly)
    ]
    for customer_id in (once, monthly):
        assert stub.objects[customer_id]["email"] is None
        assert stub.objects[customer_id]["name"] is None


def test_a_name_changed_by_staff_follows(admin_client, queued, django_capture_on_commit_callbacks):
    donor = DonorFactory(email="ada@example.org", name="Ada")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/donations/donor/{donor.pk}/change/",
            {
                "email": "ada@example.org",
                "name": "Ada King",
                "donations-TOTAL_FORMS": "0",
                "donations-INITIAL_FORMS": "0",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert queued == [donor.pk]

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            f"/admin/donations/donor/{donor.pk}/change/",
            {
                "email": "ada@example.org",
                "name": "Ada King",
                "donations-TOTAL_FORMS": "0",
                "donations-INITIAL_FORMS": "0",
            },
        )
    assert queued == [donor.pk]  # nothing changed, nothing sent


def test_a_temporary_stripe_fault_is_tried_again_with_backoff(
    stub, donor_with_two_customers, monkeypatch
):
    donor, _once, _monthly = donor_with_two_customers
    stub.down = {"/v1/customers"}
    countdowns = []
    retry = donor_stripe_customers_sync_task.retry

    def spy(*args, **kwargs):
        countdowns.append(kwargs["countdown"])
        return retry(*args, **kwargs)

    monkeypatch.setattr(donor_stripe_customers_sync_task, "retry", spy)

    result = donor_stripe_customers_sync_task.apply(args=[donor.pk])

    tries = 1 + donor_stripe_customers_sync_task.max_retries
    assert len(updates(stub)) == tries  # the first customer, each try
    assert isinstance(result.result, stripe.APIError)
    assert countdowns == sorted(countdowns) and countdowns[0] < countdowns[-1]


def test_a_refusal_is_not_tried_again(stub, donor_with_two_customers, monkeypatch):
    donor, _once, _monthly = donor_with_two_customers
    monkeypatch.setattr(
        stub,
        "_answer",
        lambda method, path, params: stub._error(
            400, "invalid_request_error", "Invalid email address", param="email"
        ),
    )

    result = donor_stripe_customers_sync_task.apply(args=[donor.pk])

    assert len(updates(stub)) == 1
    assert isinstance(result.result, stripe.InvalidRequestError)


def test_a_customer_deleted_at_stripe_is_skipped(stub, donor_with_two_customers):
    donor, once, monthly = donor_with_two_customers
    del stub.objects[once]  # deleted in the dashboard

    result = donor_stripe_customers_sync_task.apply(args=[donor.pk])

    assert result.successful()
    assert stub.objects[monthly]["email"] == "ada@example.org"
    assert [path for path, _params in updates(stub)] == [
        f"/v1/customers/{once}",
        f"/v1/customers/{monthly}",
    ]
