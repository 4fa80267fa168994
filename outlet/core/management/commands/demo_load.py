"""Load the demo content and the demo editor account; running it again changes nothing."""

from datetime import timedelta
from io import BytesIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from outlet.articles.models import Appeal, Article, ArticleAuthor, Author, Section, Tag
from outlet.articles.services import article_save, article_translation_create, content_changed
from outlet.core import demo_content
from outlet.core.language import is_multilingual, site_languages

DEMO_EDITOR_USERNAME = "editor"
DEMO_EDITOR_PASSWORD = "outlet-demo-editor"  # noqa: S105 (printed by make run; DEBUG only)
DEMO_CONTRIBUTOR_USERNAME = "contributor"
DEMO_CONTRIBUTOR_PASSWORD = "outlet-demo-contributor"  # noqa: S105 (DEBUG only, like the editor)


def _demo_image(seed: int) -> ContentFile:
    """A generated 1600x900 illustration, so the demo needs no downloaded photos."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1600, 900), (28, 44, 66))
    draw = ImageDraw.Draw(image)
    palette = [(196, 69, 54), (232, 185, 79), (96, 140, 170), (240, 236, 226)]
    for i in range(10):
        x = (seed * 97 + i * 173) % 1600
        draw.rectangle([x, 120 + i * 60, x + 420, 180 + i * 60], fill=palette[(i + seed) % 4])
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=82)
    return ContentFile(buffer.getvalue(), name=f"demo-{seed}.jpg")


class Command(BaseCommand):
    help = "Load demo sections, authors, articles and the demo editor (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dataset",
            type=int,
            metavar="N",
            help="Also add N synthetic subscribers, a fifth of them donors, and 5 sent issues "
            "(outlet/core/demo_dataset.py), e.g. --dataset 1000000 to try the admin at scale.",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Demo content is for development only (DEBUG=1).")
        self.demo_load()
        if options["dataset"]:
            from outlet.core.demo_dataset import demo_dataset_load

            try:
                counts = demo_dataset_load(
                    subscribers=options["dataset"], progress=self.stdout.write
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                "Data set: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + "."
            )

    def demo_translations_load(self) -> None:
        """On a bilingual site: the demo articles in their language, and the lead story
        linked to its translations (demo_content.TRANSLATIONS) in the site's languages."""
        if not is_multilingual():
            return
        languages = site_languages()
        if demo_content.LANGUAGE in languages:
            Article.objects.filter(
                slug__in=[data["slug"] for data in demo_content.ARTICLES], language=""
            ).update(language=demo_content.LANGUAGE)
        for language, data in demo_content.TRANSLATIONS.items():
            original = Article.objects.filter(slug=data["of"]).first()
            if language not in languages or original is None:
                continue
            if Article.objects.filter(slug=data["slug"]).exists():
                continue
            try:
                translation = article_translation_create(article=original, language=language)
            except ValidationError:
                continue  # the original is in that language already
            translation.slug = data["slug"]
            translation.headline = data["headline"]
            translation.dek = data["dek"]
            translation.body = data["body"]
            translation.status = Article.Status.PUBLISHED
            translation.publish_at = original.publish_at
            article_save(article=translation)
            self.stdout.write(f"Demo: “{original.headline}” linked to its {language} translation.")
        content_changed()

    @transaction.atomic
    def demo_load(self) -> None:
        sections = {
            slug: Section.objects.get_or_create(
                slug=slug, defaults={"name": name, "description": text, "position": i}
            )[0]
            for i, (name, slug, text) in enumerate(demo_content.SECTIONS)
        }
        authors = {
            slug: Author.objects.get_or_create(slug=slug, defaults={"name": name, "bio": bio})[0]
            for name, slug, bio in demo_content.AUTHORS
        }
        appeal, _ = Appeal.objects.get_or_create(
            name=demo_content.APPEAL["name"],
            defaults={
                **demo_content.APPEAL,
                "is_default": not Appeal.objects.filter(is_default=True).exists(),
            },
        )
        created = 0
        now = timezone.now()
        for i, data in enumerate(demo_content.ARTICLES):
            if Article.objects.filter(slug=data["slug"]).exists():
                continue
            article = Article(
                slug=data["slug"],
                headline=data["headline"],
                dek=data["dek"],
                body=data["body"].strip(),
                kind=data["kind"],
                section=sections[data["section"]],
                status=Article.Status.PUBLISHED,
                publish_at=now - timedelta(hours=data["hours_ago"]),
                appeal=appeal if data.get("image") else None,
                image_alt="An abstract illustration in the outlet's colours",
                image_caption="Illustration for the demo.",
                image_credit="The Outlet",
            )
            article.featured_image.save(f"demo-{i}.jpg", _demo_image(i), save=False)
            # Through the publishing service: sanitised body, first revision, renditions.
            article_save(article=article, author_count=len(data["authors"]))
            for position, slug in enumerate(data["authors"]):
                ArticleAuthor.objects.create(
                    article=article, author=authors[slug], position=position
                )
            for name in data["tags"]:
                tag, _ = Tag.objects.get_or_create(
                    name=name, defaults={"slug": name.lower().replace(" ", "-")}
                )
                article.tags.add(tag)
            created += 1

        self.demo_translations_load()

        from outlet.newsletters.demo import newsletter_demo_load

        self.stdout.write(newsletter_demo_load())

        User = get_user_model()
        editor, made = User.objects.get_or_create(
            username=DEMO_EDITOR_USERNAME,
            defaults={"email": "editor@outlet.test", "is_staff": True, "is_superuser": True},
        )
        if made:
            editor.set_password(DEMO_EDITOR_PASSWORD)
            editor.save()
        editor.groups.add(Group.objects.get(name="editor"))
        contributor, contributor_made = User.objects.get_or_create(
            username=DEMO_CONTRIBUTOR_USERNAME,
            defaults={"email": "contributor@outlet.test", "is_staff": True},
        )
        if contributor_made:
            contributor.set_password(DEMO_CONTRIBUTOR_PASSWORD)
            contributor.save()
        contributor.groups.add(Group.objects.get(name="contributor"))
        self.stdout.write(
            f"Demo content: {created} new article(s), {Article.objects.count()} in all; "
            f"editor account {'created' if made else 'kept'}."
        )
