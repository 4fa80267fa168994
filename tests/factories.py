"""factory-boy factories shared by the whole suite."""

from datetime import timedelta

import factory
from django.utils import timezone

from outlet.articles.models import Appeal, Article, ArticleAuthor, Author, Section, Tag


class SectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Section
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Section {n}")
    slug = factory.Sequence(lambda n: f"section-{n}")


class AuthorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Author

    name = factory.Faker("name")
    slug = factory.Sequence(lambda n: f"author-{n}")


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"Tag {n}")
    slug = factory.Sequence(lambda n: f"tag-{n}")


class AppealFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appeal

    name = factory.Sequence(lambda n: f"Appeal {n}")
    heading = "Support independent journalism"
    text = "Readers pay for everything we publish."


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article
        skip_postgeneration_save = True

    headline = factory.Sequence(lambda n: f"Headline number {n}")
    slug = factory.Sequence(lambda n: f"article-{n}")
    dek = "A dek that explains the story."
    body = "<p>First paragraph.</p><h2>A subheading</h2><p>Second paragraph.</p>"
    section = factory.SubFactory(SectionFactory)
    status = Article.Status.PUBLISHED
    publish_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))

    @factory.post_generation
    def authors(self, create, extracted, **kwargs):
        if not create:
            return
        for position, author in enumerate(extracted or [AuthorFactory()]):
            ArticleAuthor.objects.create(article=self, author=author, position=position)


# --- Newsletters (audience) --------------------------------------------------

from outlet.newsletters.models import Newsletter, Subscriber, Subscription  # noqa: E402


class NewsletterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Newsletter
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Newsletter {n}")
    slug = factory.Sequence(lambda n: f"newsletter-{n}")
    description = "Our best analysis, in your inbox."
    from_name = "The Outlet"
    from_email = "newsletters@outlet.test"


class SubscriberFactory(factory.django.DjangoModelFactory):
    """An active subscriber; pass `newsletters=[...]` for confirmed subscriptions."""

    class Meta:
        model = Subscriber
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"reader{n}@example.com")
    status = Subscriber.Status.ACTIVE
    confirmed_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def newsletters(self, create, extracted, **kwargs):
        if not create:
            return
        for newsletter in extracted or []:
            Subscription.objects.create(
                subscriber=self, newsletter=newsletter, confirmed_at=self.confirmed_at
            )


# --- donations ---------------------------------------------------------------

from outlet.donations.models import Campaign, Donation, Donor, Gift  # noqa: E402


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    goal_amount = 5_000_000
    currency = "usd"


class DonorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Donor

    email = factory.Sequence(lambda n: f"donor{n}@example.test")
    name = factory.Faker("name")


class GiftFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Gift

    donor = factory.SubFactory(DonorFactory)
    amount = 1000
    currency = "usd"
    interval = "month"
    status = Gift.Status.ACTIVE
    stripe_customer_id = factory.Sequence(lambda n: f"cus_test{n}")
    stripe_subscription_id = factory.Sequence(lambda n: f"sub_test{n}")
    card_brand = "visa"
    card_last4 = "4242"


class DonationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Donation

    donor = factory.SubFactory(DonorFactory)
    amount = 2500
    currency = "usd"
    frequency = "once"
    status = Donation.Status.PENDING
    stripe_customer_id = factory.Sequence(lambda n: f"cus_don{n}")
    stripe_payment_intent_id = factory.Sequence(lambda n: f"pi_test{n}")
    card_brand = "visa"
    card_last4 = "4242"


# --- newsletter issues ----------------------------------------------------------

from outlet.newsletters.models import Issue, IssueArticle  # noqa: E402


class IssueFactory(factory.django.DjangoModelFactory):
    """A draft issue ready to send; pass `articles=[...]` to include them in order."""

    class Meta:
        model = Issue
        skip_postgeneration_save = True

    newsletter = factory.SubFactory(NewsletterFactory)
    subject = factory.Sequence(lambda n: f"The briefing, edition {n}")
    preheader = "What we learned this week."
    intro = "<p>Good morning. Here is what matters today.</p>"

    @factory.post_generation
    def articles(self, create, extracted, **kwargs):
        if not create:
            return
        for position, article in enumerate(extracted or []):
            IssueArticle.objects.create(issue=self, article=article, position=position)
