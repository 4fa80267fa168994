"""Static pages: published ones are public at /page/<slug>/, drafts are not."""

import pytest

from outlet.pages.models import Page

pytestmark = pytest.mark.django_db


def test_a_published_page_is_public_and_a_draft_is_not(client):
    Page.objects.create(
        title="About us", slug="about", body="<p>Who we are.</p>", status="published"
    )
    Page.objects.create(title="Masthead", slug="masthead", body="<p>Soon.</p>")

    about = client.get("/page/about/")

    assert about.status_code == 200
    assert "Who we are." in about.content.decode() and "About us" in about.content.decode()
    assert client.get("/page/masthead/").status_code == 404


def test_page_bodies_are_sanitised_on_save():
    page = Page(title="T", slug="t", body='<p onclick="x()">Hi</p><script>bad()</script>')
    page.full_clean()

    assert page.body == "<p>Hi</p>"


def test_editors_can_add_pages_in_the_admin(admin_client):
    assert admin_client.get("/admin/pages/page/add/").status_code == 200


def test_a_page_taken_back_to_draft_in_the_admin_leaves_the_cached_pages(
    client, admin_client, django_capture_on_commit_callbacks
):
    page = Page.objects.create(
        title="About us", slug="about", body="<p>Who we are.</p>", status="published"
    )
    assert client.get("/page/about/").status_code == 200  # now in the page cache

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/pages/page/{page.pk}/change/",
            {
                "title": "About us",
                "slug": "about",
                "body": "<p>Draft.</p>",
                "status": "draft",
                "seo_title": "",
                "seo_description": "",
            },
        )
    assert response.status_code == 302

    assert client.get("/page/about/").status_code == 404


def test_a_page_deleted_in_the_admin_leaves_the_cached_pages(
    client, admin_client, django_capture_on_commit_callbacks
):
    page = Page.objects.create(title="About", slug="about", body="<p>A.</p>", status="published")
    assert client.get("/page/about/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/pages/page/{page.pk}/delete/", {"post": "yes"})

    assert client.get("/page/about/").status_code == 404


def test_a_page_tells_search_engines_its_title_description_and_address(client, settings):
    Page.objects.create(
        title="Masthead",
        slug="masthead",
        body="<p>Who does what.</p>",
        status="published",
        seo_title="Our masthead and editors",
        seo_description="The people who edit and publish the Outlet.",
    )

    text = client.get("/page/masthead/").content.decode()

    assert "<title>Our masthead and editors | " in text
    assert '<meta name="description" content="The people who edit and publish the Outlet.">' in text
    assert f'<link rel="canonical" href="{settings.SITE_URL}/page/masthead/">' in text


def test_published_pages_are_in_the_sitemap_and_drafts_are_not(client, settings):
    Page.objects.create(title="About us", slug="about", status="published")
    Page.objects.create(title="Masthead", slug="masthead")

    text = client.get("/sitemap.xml").content.decode()

    assert f"<loc>{settings.SITE_URL}/page/about/</loc>" in text
    assert "/page/masthead/" not in text


def test_a_page_published_in_the_admin_appears_in_the_cached_sitemap(
    client, admin_client, django_capture_on_commit_callbacks
):
    page = Page.objects.create(title="About us", slug="about", body="<p>Who we are.</p>")
    assert "/page/about/" not in client.get("/sitemap.xml").content.decode()  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/pages/page/{page.pk}/change/",
            {
                "title": "About us",
                "slug": "about",
                "body": "<p>Who we are.</p>",
                "status": "published",
                "seo_title": "",
                "seo_description": "",
                "canonical_url": "",
            },
        )
    assert response.status_code == 302

    assert "/page/about/" in client.get("/sitemap.xml").content.decode()
