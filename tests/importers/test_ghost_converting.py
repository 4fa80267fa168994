"""The pure Ghost conversions: what a Ghost post (HTML, lexical or mobiledoc) becomes here."""

import datetime as dt
import json
from pathlib import Path

import pytest

from outlet.articles.models import Article
from outlet.importers.ghost.converting import (
    body_convert,
    date_parse,
    post_convert,
    status_choose,
    url_resolve,
)
from outlet.importers.ghost.reading import ExportIndex, Tag, User, export_index, export_posts

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FIXTURES = Path(__file__).parent / "fixtures"


def posts_of(name: str) -> tuple[ExportIndex, dict[str, dict]]:
    index = export_index(FIXTURES / name)
    return index, {row["slug"]: row for row in export_posts(FIXTURES / name, index)}


def convert(name: str, slug: str):
    index, posts = posts_of(name)
    return post_convert(posts[slug], index=index, now=NOW)


# --- the rendered HTML (what every Ghost 4–6 export holds) -------------------------------


def test_rendered_image_card_becomes_a_figure_with_alt_and_caption():
    post = convert("ghost-5.json", "council-approves-budget")

    assert (
        '<figure class="figure"><img src="/content/images/2024/03/council.jpg" '
        'alt="Councillors voting"><figcaption>The vote, 7 to 2.</figcaption></figure>'
    ) in post.body
    image = post.images["/content/images/2024/03/council.jpg"]
    assert (image.alt, image.caption) == ("Councillors voting", "The vote, 7 to 2.")
    assert "srcset" not in post.body and "kg-" not in post.body


def test_alternative_quote_style_becomes_the_sites_pull_quote():
    post = convert("ghost-5.json", "council-approves-budget")

    assert '<blockquote class="pull-quote"><p>We will not back down.</p></blockquote>' in post.body
    assert "<blockquote><p>An ordinary quote.</p></blockquote>" in post.body


def test_rendered_bookmark_and_embed_become_link_cards_without_third_party_code():
    post = convert("ghost-5.json", "council-approves-budget")

    assert (
        '<p><a href="https://example.org/report" rel="noopener noreferrer">'
        "https://example.org/report</a></p><p><em>The budget report</em></p>"
    ) in post.body
    assert "https://www.youtube.com/watch?v=abc123</a></p><p><em>The full meeting</em>" in (
        post.body
    )
    assert "iframe" not in post.body and "thumb.jpg" not in post.body
    assert "thumb.jpg" not in "".join(post.images)


def test_rendered_callout_toggle_and_button_keep_their_words():
    post = convert("ghost-5.json", "council-approves-budget")

    assert "<blockquote><p>💡 Read the budget first.</p></blockquote>" in post.body
    assert "<h3>What is a levy?</h3><p>A local tax.</p>" in post.body
    assert '<p><a href="/donate/" rel="noopener noreferrer">Support us</a></p>' in post.body
    assert "svg" not in post.body and "button" not in post.body


def test_unknown_card_is_kept_as_sanitised_html_with_a_note():
    post = convert("ghost-5.json", "council-approves-budget")

    assert "Harbour at dusk" in post.body and "Created by Jane" in post.body
    assert "the Ghost card “nft” was kept as sanitised HTML; check how it reads" in post.notes


def test_script_tags_and_event_handlers_never_reach_the_body():
    post = convert("ghost-5.json", "council-approves-budget")

    assert "<p>Poll below</p>" in post.body
    assert "script" not in post.body and "alert" not in post.body
    assert "onclick" not in post.body and "onerror" not in post.body
    assert "scripts, frames or event handlers were removed" in post.notes


# --- lexical (Ghost 5+) without HTML -----------------------------------------------------


def test_lexical_document_is_rendered_card_by_card():
    post = convert("ghost-5.json", "the-river-in-pictures")

    assert post.body.startswith(
        "<p>The lexical-only story starts <strong>here</strong> and goes "
        '<a href="/other-story/" rel="noopener noreferrer">on</a>.</p>'
        "<h2>What happened</h2><ol><li>First point</li><li>Second point</li></ol>"
        "<blockquote><p>A plain quote.</p></blockquote>"
        '<blockquote class="pull-quote"><p>A pull quote that matters.</p></blockquote>'
        '<figure class="figure"><img src="/content/images/2024/05/river.jpg" '
        'alt="The river at dawn"><figcaption>Photo: Jane Doe</figcaption></figure>'
    )
    assert '<img src="/content/images/2024/05/a.jpg" alt="Boats">' in post.body
    assert "<figcaption>Morning boats</figcaption>" in post.body
    assert "<p><em>The harbour</em></p>" in post.body
    assert "https://www.youtube.com/watch?v=abc123</a></p><p><em>The full meeting</em>" in (
        post.body
    )
    assert "<blockquote><p>💡 Read the budget first.</p></blockquote>" in post.body
    assert "<h3>What is a levy?</h3><p>A local tax.</p>" in post.body
    assert "<p>Poll below</p>" in post.body and "script" not in post.body
    assert "Episode one of the podcast" in post.body
    assert "https://share.transistor.fm/e/abc" in post.body
    assert "the Ghost card “transistor” was kept as sanitised HTML; check how it reads" in (
        post.notes
    )
    assert post.body.endswith("<hr><p><em>The end.</em></p>")
    assert set(post.images) == {
        "/content/images/2024/05/river.jpg",
        "/content/images/2024/05/a.jpg",
        "/content/images/2024/05/b.jpg",
    }


# --- mobiledoc (Ghost 1–4) without HTML --------------------------------------------------


def test_mobiledoc_sections_markups_and_soft_returns():
    post = convert("ghost-4.json", "saturday-at-the-market")

    assert post.body.startswith(
        '<p>Opening <strong>bold words</strong> and <a href="/prices/" '
        'rel="noopener noreferrer">a link</a><br>after a soft return.</p>'
        "<h2>At the stalls</h2><ul><li>Bread</li><li><em>Fish</em></li></ul>"
        "<blockquote><p>Prices went up.</p></blockquote>"
        '<blockquote class="pull-quote"><p>Nobody can afford cherries.</p></blockquote>'
    )


def test_mobiledoc_cards_become_site_markup():
    post = convert("ghost-4.json", "saturday-at-the-market")

    assert (
        '<figure class="figure"><img src="/content/images/2021/03/market.jpg" '
        'alt="Stalls at the market"><figcaption>Saturday <em>market</em></figcaption></figure>'
    ) in post.body
    assert '<img src="/content/images/2021/03/c.jpg" alt="Cheese">' in post.body
    assert ">https://twitter.com/ledger/status/123</a></p>" in post.body
    assert "<p><em>Food prices 2021 — Source of the figures</em></p>" in post.body
    assert "Some <strong>markdown</strong> with a" in post.body
    assert "<li>item one</li>" in post.body
    assert "<blockquote><p>⚠️ Prices are from March.</p></blockquote>" in post.body
    assert "<h3>How we counted</h3><p>We asked every stall.</p>" in post.body
    assert ">Read the data</a></p><hr>" in post.body
    assert "<h3>Market tote bag</h3><p>Made locally.</p>" in post.body
    assert "track()" not in post.body and "onerror" not in post.body
    assert "widgets.js" not in post.body


def test_unknown_mobiledoc_card_keeps_its_text_and_link_with_a_note():
    post = convert("ghost-4.json", "unknown-card")

    assert post.body == (
        '<p>Before the card.</p><p><a href="https://opensea.io/assets/9" '
        'rel="noopener noreferrer">https://opensea.io/assets/9</a></p>'
        "<p>Market at dusk</p><p>Sam Roe</p>"
    )
    assert post.notes == ["the Ghost card “nft” was kept as sanitised HTML; check how it reads"]


def test_unreadable_document_falls_back_to_the_plain_text_with_a_note():
    body, conversion = body_convert(
        {"html": None, "lexical": "{not json", "plaintext": "One.\n\nTwo <b>&"}
    )

    assert body == "<p>One.</p><p>Two &lt;b&gt;&amp;</p>"
    assert conversion.notes[0].startswith("its lexical document could not be read")
    assert "only its plain text was in the export" in conversion.notes


def test_ghost_url_placeholder_is_resolved_to_the_old_site_or_a_path():
    assert url_resolve("__GHOST_URL__/content/images/a.jpg", site_url="https://old.example/") == (
        "https://old.example/content/images/a.jpg"
    )
    assert url_resolve("__GHOST_URL__/about/", site_url="") == "/about/"
    assert url_resolve(None, site_url="") == ""


# --- the post's fields -------------------------------------------------------------------


def test_published_post_fields():
    post = convert("ghost-5.json", "council-approves-budget")

    assert (post.kind, post.status, post.held_because) == ("article", "published", "")
    assert post.publish_at == dt.datetime(2024, 3, 12, 9, 30, tzinfo=dt.UTC)
    assert post.title == "Council approves the budget"
    assert post.excerpt == "Seven votes to two, after a long night."
    assert post.featured is True
    assert (post.seo_title, post.seo_description) == (
        "Council approves the 2024 budget",
        "The vote was seven to two.",
    )
    assert post.canonical_url == "https://example.org/original-council-story"
    assert post.featured_image is not None
    assert (post.featured_image.url, post.featured_image.alt, post.featured_image.caption) == (
        "/content/images/2024/03/hall.jpg",
        "The city hall at night",
        "Photo by Jane",
    )


def test_authors_follow_ghosts_order_with_their_details():
    post = convert("ghost-5.json", "council-approves-budget")

    assert [(a.source_id, a.name, a.slug, a.email) for a in post.authors] == [
        ("1", "Jane Doe", "jane", "jane@example.org"),
        ("65f0000000000000000000a2", "Sam Roe", "sam", ""),
    ]
    assert post.authors[0].bio == "Covers the city hall."
    assert post.authors[0].old_paths == ("/author/jane/",)
    assert post.authors[0].old_feed_paths == ("/author/jane/rss/",)


def test_primary_tag_is_the_section_and_internal_tags_are_skipped():
    post = convert("ghost-5.json", "council-approves-budget")

    assert post.section is not None
    assert (post.section.name, post.section.slug) == ("City Hall", "city-hall")
    assert post.section.old_paths == ("/tag/city-hall/",)
    assert post.section.old_feed_paths == ("/tag/city-hall/rss/",)
    assert [t.slug for t in post.tags] == ["budget"]


def test_a_first_internal_tag_leaves_no_section_as_on_ghost():
    post = convert("ghost-5.json", "the-river-in-pictures")

    assert post.section is None
    assert [t.slug for t in post.tags] == ["photography"]


def test_old_addresses_are_ghosts_permalink_amp_and_preview_link():
    post = convert("ghost-5.json", "council-approves-budget")

    assert post.old_paths == [
        "/council-approves-budget/",
        "/council-approves-budget/amp/",
        "/p/0b7f3a52-1c1e-4d1f-9a39-1a2b3c4d5e01/",
    ]


def test_a_site_in_a_folder_prefixes_every_old_address():
    index, posts = posts_of("ghost-5.json")
    index.site_url = "https://old.example/blog"

    post = post_convert(posts["about"], index=index, now=NOW)

    assert post.kind == "page"
    assert post.old_paths == ["/blog/about/", "/blog/p/0b7f3a52-1c1e-4d1f-9a39-1a2b3c4d5e05/"]
    assert post.authors[0].old_paths[0] == "/blog/author/jane/"


@pytest.mark.parametrize(
    ("slug", "status", "held"),
    [
        ("inside-the-mayors-office", "draft", "for members only on Ghost (visibility “paid”)"),
        ("election-night-live", "scheduled", ""),
        ("half-written-investigation", "draft", ""),
        ("weekly-letter-12", "draft", "sent by email only on Ghost"),
        ("about", "published", ""),
    ],
)
def test_status_never_makes_members_or_email_writing_public(slug, status, held):
    post = convert("ghost-5.json", slug)

    assert post.status == status
    assert post.held_because.startswith(held)
    assert bool(post.held_because) == bool(held)


def test_members_visibility_in_a_ghost_4_export_is_held_too():
    post = convert("ghost-4.json", "market-accounts")

    assert post.status == Article.Status.DRAFT
    assert "visibility “members”" in post.held_because


def test_status_choice_rules():
    past, future = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1)

    def choose(status, publish_at, visibility="public"):
        return status_choose(
            status=status, visibility=visibility, email_only=False, publish_at=publish_at, now=NOW
        )

    assert choose("published", future) == (Article.Status.SCHEDULED, "")
    assert choose("scheduled", past) == (Article.Status.PUBLISHED, "")
    assert choose("published", past, "tiers")[0] == Article.Status.DRAFT
    assert choose("archived", past) == (Article.Status.DRAFT, "“archived” on Ghost")


def test_ghost_times_of_every_era_are_read_in_utc():
    assert date_parse("2024-03-12T09:30:00.000Z") == dt.datetime(2024, 3, 12, 9, 30, tzinfo=dt.UTC)
    assert date_parse("2017-08-01 12:00:00") == dt.datetime(2017, 8, 1, 12, tzinfo=dt.UTC)
    assert date_parse(1388805572000) == dt.datetime(2014, 1, 4, 3, 19, 32, tzinfo=dt.UTC)
    assert date_parse(None) is None and date_parse("soon") is None


def test_a_ghost_0x_post_with_page_flag_author_id_and_markdown():
    index = ExportIndex(
        users={"1": User(id="1", name="Old Owner", slug="owner")},
        tags={"3": Tag(id="3", name="Notes", slug="notes")},
        post_tags={"5": [(0.0, "3")]},
    )
    row = {
        "id": 5,
        "title": "Colophon",
        "slug": "colophon",
        "markdown": "Made with *care*.",
        "html": None,
        "image": "/content/images/2014/01/press.jpg",
        "page": 1,
        "status": "published",
        "author_id": 1,
        "meta_title": "Our colophon",
        "published_at": 1388805572000,
    }

    post = post_convert(row, index=index, now=NOW)

    assert (post.source_id, post.kind, post.status) == ("5", "page", "published")
    assert post.body == "<p>Made with <em>care</em>.</p>"
    assert [a.name for a in post.authors] == ["Old Owner"]
    assert post.section is not None and post.section.slug == "notes"
    assert post.seo_title == "Our colophon"
    assert post.featured_image is not None
    assert post.featured_image.url == "/content/images/2014/01/press.jpg"


def test_post_convert_is_pure_json_in_records_out():
    index, posts = posts_of("ghost-4.json")
    row = json.loads(json.dumps(posts["saturday-at-the-market"]))

    first = post_convert(row, index=index, now=NOW)
    second = post_convert(row, index=index, now=NOW)

    assert first == second
    assert [a.slug for a in first.authors] == ["ada", "ben"]
    assert first.section is not None and first.section.slug == "food"
    assert [t.slug for t in first.tags] == ["markets"]
    assert first.seo_description == "The market in pictures."


def test_code_injection_is_left_out_and_named():
    index, posts = posts_of("ghost-5.json")
    row = {**posts["about"], "codeinjection_foot": "<script>track()</script>"}

    post = post_convert(row, index=index, now=NOW)

    assert "track" not in post.body
    assert post.notes == ["its code injection (scripts Ghost added to its page) was left out"]


def test_code_keeps_its_lines_though_the_site_has_no_preformatted_text():
    body, _ = body_convert(
        {"html": '<pre><code class="language-python">if x:\n    y = "&lt;b&gt;"\n</code></pre>'}
    )

    assert body == '<p>if x:<br>    y = "&lt;b&gt;"</p>'


def test_control_characters_json_can_carry_do_not_stop_the_conversion():
    index, posts = posts_of("ghost-5.json")
    row = {**posts["about"], "html": "<p>Tab\x0bbed\x00 text</p>", "title": "About\x00 us"}

    post = post_convert(row, index=index, now=NOW)

    assert post.body == "<p>Tabbed text</p>"
    assert post.title == "About us"


@pytest.mark.parametrize("flag", [True, "true", 1, "1"])
def test_email_only_is_held_however_the_export_writes_the_flag(tmp_path, flag):
    """MySQL exports write 0/1; JSON `true` (other exporters, migrate tools) is the same flag."""
    export = json.loads((FIXTURES / "ghost-5.json").read_text())
    data = export["db"][0]["data"]
    about = next(p for p in data["posts"] if p["slug"] == "council-approves-budget")
    data["posts_meta"] = [{"id": "pmx", "post_id": about["id"], "email_only": flag}]
    path = tmp_path / "ghost.json"
    path.write_text(json.dumps(export))

    index = export_index(path)
    row = next(r for r in export_posts(path, index) if r["slug"] == "council-approves-budget")
    post = post_convert(row, index=index, now=NOW)

    assert post.status == Article.Status.DRAFT
    assert post.held_because.startswith("sent by email only on Ghost")


def test_nul_characters_never_reach_what_is_stored(tmp_path):
    """PostgreSQL refuses text with NUL: one in a name or an SEO field stopped the import."""
    export = json.loads((FIXTURES / "ghost-5.json").read_text())
    data = export["db"][0]["data"]
    data["posts_meta"][0]["meta_title"] = "Council\x00 approves"
    data["users"][0]["name"] = "Jane\x00 Doe"
    data["tags"][0]["name"] = "City\x00 Hall"
    path = tmp_path / "ghost.json"
    path.write_text(json.dumps(export))

    index = export_index(path)
    row = next(r for r in export_posts(path, index) if r["slug"] == "council-approves-budget")
    post = post_convert({**row, "uuid": "0b7f\x00"}, index=index, now=NOW)

    assert post.seo_title == "Council approves"
    assert [a.name for a in post.authors][0] == "Jane Doe"
    assert post.section is not None and post.section.name == "City Hall"
    assert not any("\x00" in path for path in post.old_paths)


@pytest.mark.parametrize("value", [10**20, -(10**20), 1e308, 2**63])
def test_a_time_no_calendar_holds_is_no_time_not_a_crash(value):
    """Milliseconds past any year stopped the whole import (OSError, OverflowError)."""
    assert date_parse(value) is None
