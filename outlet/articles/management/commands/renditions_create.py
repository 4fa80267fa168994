"""Write the renditions any stored image is missing (after a new size or format is
added to articles/images.py, or after restoring uploads without them)."""

from django.core.management.base import BaseCommand

from outlet.articles.images import renditions_create
from outlet.articles.models import Article, ArticleImage


class Command(BaseCommand):
    help = "Write missing renditions (JPEG, AVIF, WebP) of featured and library images."

    def handle(self, *args, **options):
        written = 0
        for article in Article.objects.exclude(featured_image="").only("featured_image").iterator():
            written += len(renditions_create(field_file=article.featured_image))
        for image in ArticleImage.objects.only("image").iterator():
            written += len(renditions_create(field_file=image.image))
        self.stdout.write(f"renditions: {written} written")
