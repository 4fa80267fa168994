"""
Reads for a reader's account: what the outlet holds about one address, joined from the
donations and newsletters apps through their selectors only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from outlet.core.addresses import email_normalise
from outlet.core.language import recipient_language
from outlet.donations import selectors as donations
from outlet.donations.models import Donation, Donor, Gift
from outlet.newsletters import selectors as newsletters
from outlet.newsletters.models import Newsletter, Subscriber

from .models import Reader


def reader_address_known(*, email: str) -> bool:
    """Whether an address gets sign-in mail: it gave (a paid donation or a live gift) or
    confirmed a subscription (even if unsubscribed since). A donor or subscriber row alone
    does not count: anyone can type any address into the donate or sign-up form, and an
    abandoned checkout or an unconfirmed sign-up must not make it receive our mail."""
    if donations.donor_has_given(email=email):
        return True
    subscriber = newsletters.subscriber_for_email(email=email)
    return subscriber is not None and subscriber.confirmed_at is not None


def reader_address_in_use(*, email: str) -> bool:
    """Whether any donor or subscriber row holds the address (an abandoned checkout's
    too): a change of address to it would meet their unique constraints."""
    return (
        donations.donor_for_email(email=email) is not None
        or newsletters.subscriber_for_email(email=email) is not None
    )


def reader_for_email(*, email: str) -> Reader | None:
    return Reader.objects.filter(email=email_normalise(email)).first()


@dataclass(frozen=True)
class Account:
    reader: Reader
    donor: Donor | None
    subscriber: Subscriber | None
    newsletters: list[tuple[Newsletter, str]]
    gifts: QuerySet[Gift] | list[Gift]
    donations: QuerySet[Donation] | list[Donation]

    @property
    def language(self) -> str:
        """The language of this reader's emails (core.language.recipient_language): a
        sign-up never confirmed (anyone may have typed the address) does not outrank
        the donor's."""
        subscriber = self.subscriber
        if subscriber is not None and subscriber.confirmed_at is None and self.donor is not None:
            subscriber = None
        return recipient_language(obj=subscriber or self.donor or self.reader)

    @property
    def card_gift(self) -> Gift | None:
        """The live gift whose card the page offers to update (one Card Element a page)."""
        return next((gift for gift in self.gifts if gift.is_live), None)


def reader_account(*, reader: Reader) -> Account:
    donor = donations.donor_for_email(email=reader.email)
    gifts: QuerySet[Gift] | list[Gift] = []
    payments: QuerySet[Donation] | list[Donation] = []
    if donor is not None:
        gifts, payments = donations.donor_history(donor=donor)
    return Account(
        reader=reader,
        donor=donor,
        subscriber=newsletters.subscriber_for_email(email=reader.email),
        newsletters=newsletters.subscriber_newsletters(
            email=reader.email,
            is_donor=donor is not None and donations.donor_has_given(email=reader.email),
        ),
        gifts=gifts,
        donations=payments,
    )


def reader_data_export(*, reader: Reader) -> dict[str, Any]:
    """Everything held about the address, as one JSON-ready document."""
    donor = donations.donor_for_email(email=reader.email)
    subscriber = newsletters.subscriber_for_email(email=reader.email)
    return {
        "exported_at": timezone.now().isoformat(),
        "email": reader.email,
        "account": {
            "created_at": reader.created_at.isoformat(),
            "signed_in_at": reader.signed_in_at.isoformat() if reader.signed_in_at else None,
        },
        "newsletters": (
            newsletters.subscriber_data_export(subscriber=subscriber) if subscriber else None
        ),
        "donations": donations.donor_data_export(donor=donor) if donor else None,
    }
