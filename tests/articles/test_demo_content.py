import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from outlet.articles.models import Article

pytestmark = pytest.mark.django_db


def test_demo_load_publishes_through_the_service_and_is_idempotent(settings, media_root, client):
    settings.DEBUG = True
    call_command("demo_load", verbosity=0)
    call_command("demo_load", verbosity=0)

    lead = Article.objects.get(slug="how-the-new-district-map-was-drawn")
    assert lead.revisions.count() == 1
    assert '<blockquote class="pull-quote">' in lead.body
    assert User.objects.get(username="editor").has_perm("articles.publish_article")
    contributor = User.objects.get(username="contributor")
    assert contributor.has_perm("articles.add_article")
    assert not contributor.has_perm("articles.publish_article")
    text = client.get(lead.get_absolute_url()).content.decode()
    assert "pull-quote" in text and ".w800.jpg 800w" in text


def test_a_bilingual_demo_links_the_lead_story_to_its_translation(bilingual, settings, media_root):
    import re

    from django.test import Client

    settings.DEBUG = True
    call_command("demo_load", verbosity=0)
    call_command("demo_load", verbosity=0)  # still once

    english = Article.objects.get(slug="how-the-new-district-map-was-drawn")
    spanish = Article.objects.get(slug="como-se-trazo-el-nuevo-mapa-de-distritos")
    assert (english.language, spanish.language) == ("en", "es")
    assert english.translation_group == spanish.translation_group is not None
    page = Client().get("/como-se-trazo-el-nuevo-mapa-de-distritos/").text
    hreflangs = dict(re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', page))
    assert hreflangs["en"].endswith("/en/how-the-new-district-map-was-drawn/")
