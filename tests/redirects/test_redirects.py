"""Old addresses answer 301 to their new home; found pages never look at the table."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from outlet.redirects.models import Redirect
from outlet.redirects.services import old_path_from_url, redirect_set
from tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db


def test_an_unknown_address_with_a_redirect_answers_301_cacheable(client):
    Redirect.objects.create(old_path="/2019/05/12/old-slug/", target="/new-slug/")

    response = client.get("/2019/05/12/old-slug/")

    assert response.status_code == 301
    assert response.headers["Location"] == "/new-slug/"
    assert "public" in response.headers["Cache-Control"]
    assert Redirect.objects.get().hits == 1


def test_an_address_without_a_redirect_stays_a_404(client):
    assert client.get("/2019/05/12/nothing-here/").status_code == 404


def test_article_pages_never_query_the_redirect_table(client):
    ArticleFactory(slug="a-story")
    Redirect.objects.create(old_path="/a-story/", target="/elsewhere/")

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/a-story/")

    assert response.status_code == 200
    assert not [q for q in queries.captured_queries if "redirects_redirect" in q["sql"]]


def test_wordpress_query_links_on_the_home_page_redirect(client):
    Redirect.objects.create(old_path="/?p=123", target="/a-story/")

    assert client.get("/?p=123").headers["Location"] == "/a-story/"
    assert client.get("/?p=999").status_code == 200  # the home page, as before


def test_a_redirect_to_another_site_is_refused_when_saved_and_when_served(client):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        with pytest.raises(ValidationError):
            Redirect(old_path="/old/", target=target).full_clean()
    # A row that got past validation (written by SQL) is still never followed elsewhere.
    Redirect.objects.create(old_path="/old/", target="//evil.example/")

    assert client.get("/old/").status_code == 404


def test_old_paths_are_decoded_like_request_paths():
    assert old_path_from_url("https://old.example/caf%C3%A9/") == "/café/"
    assert old_path_from_url("https://old.example/?p=12") == "/?p=12"
    assert old_path_from_url("") == "/"


def test_a_redirect_an_editor_changed_is_left_alone_by_an_import():
    Redirect.objects.create(old_path="/old/", target="/chosen-by-editor/", source="")

    assert redirect_set(old_path="/old/", target="/imported/", source="wordpress:x") == "skipped"
    assert Redirect.objects.get().target == "/chosen-by-editor/"


def test_an_address_that_is_already_the_new_one_needs_no_redirect():
    assert redirect_set(old_path="/same/", target="/same/", source="wordpress:x") == "same"
    assert not Redirect.objects.exists()


def test_editors_see_redirects_with_hits_in_the_admin(admin_client):
    Redirect.objects.create(old_path="/old/", target="/new/", hits=7)

    page = admin_client.get("/admin/redirects/redirect/").content.decode()

    assert "/old/" in page and "/new/" in page and ">7<" in page


def test_an_address_no_page_claims_is_redirected_without_building_the_404_page(client):
    from django.test.signals import template_rendered

    Redirect.objects.create(old_path="/2019/05/12/old-slug/", target="/new-slug/")
    rendered = []
    template_rendered.connect(lambda sender, template, **kw: rendered.append(template.name))

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/2019/05/12/old-slug/")

    assert response.status_code == 301
    assert rendered == []
    assert all("redirects_redirect" in q["sql"] for q in queries.captured_queries)


def test_a_redirect_to_itself_or_back_to_its_target_is_refused():
    Redirect.objects.create(old_path="/b/", target="/a/")

    with pytest.raises(ValidationError, match="itself"):
        Redirect(old_path="/a/", target="/a/").full_clean()
    with pytest.raises(ValidationError, match="back"):
        Redirect(old_path="/a/", target="/b/").full_clean()


def test_redirects_are_set_in_one_batch_with_an_outcome_for_each():
    from outlet.redirects.services import redirects_set

    Redirect.objects.create(old_path="/kept/", target="/by-editor/")
    Redirect.objects.create(old_path="/moved/", target="/old-target/", source="wordpress:x")

    outcomes = redirects_set(
        targets={
            "/new/": "/a/",
            "/kept/": "/b/",
            "/moved/": "/c/",
            "/same/": "/same/",
            "/" + "x" * 600: "/d/",
        },
        source="wordpress:x",
    )

    assert outcomes == {
        "/new/": "imported",
        "/kept/": "skipped",
        "/moved/": "updated",
        "/same/": "same",
        "/" + "x" * 600: "failed",
    }
    assert dict(Redirect.objects.values_list("old_path", "target")) == {
        "/new/": "/a/",
        "/kept/": "/by-editor/",
        "/moved/": "/c/",
    }


def test_static_and_media_addresses_never_query_the_redirect_table(client):
    with CaptureQueriesContext(connection) as queries:
        client.get("/static/missing.css")
        client.get("/media/missing.jpg")

    assert not [q for q in queries.captured_queries if "redirects_redirect" in q["sql"]]


@pytest.mark.parametrize("target", ["/\t/evil.example/", "/\n/evil.example/", "/\r/evil.example/"])
def test_a_redirect_browsers_would_read_as_another_site_is_refused(client, target):
    # Browsers drop tabs and line breaks from an address: "/\t/evil.example/" is //evil.example/.
    with pytest.raises(ValidationError):
        Redirect(old_path="/old/", target=target).full_clean()
    assert redirect_set(old_path="/old/", target=target, source="wordpress:x") == "failed"
    Redirect.objects.create(old_path="/old/", target=target)  # past validation, by SQL

    assert client.get("/old/").status_code == 404


def test_the_exact_old_address_wins_over_its_slash_twin_and_only_it_counts_a_hit(client):
    Redirect.objects.create(old_path="/old", target="/no-slash/")
    Redirect.objects.create(old_path="/old/", target="/with-slash/")

    response = client.get("/old/")

    assert response.status_code == 301 and response["Location"] == "/with-slash/"
    assert dict(Redirect.objects.values_list("old_path", "hits")) == {"/old": 0, "/old/": 1}


def test_an_old_link_is_answered_in_one_query(client, django_assert_num_queries):
    Redirect.objects.create(old_path="/2019/05/12/flood-night/", target="/flood-night/")

    with django_assert_num_queries(1):
        response = client.get("/2019/05/12/flood-night/")

    assert response.status_code == 301
