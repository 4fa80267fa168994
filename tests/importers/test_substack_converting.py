"""Substack's posts.csv rows and post HTML into the site's records: pure conversions."""

import datetime as dt

import pytest

from outlet.articles.models import Article
from outlet.importers.markup import ACTIVE_CONTENT_NOTE
from outlet.importers.substack.body import body_convert, original_image_url
from outlet.importers.substack.converting import (
    author_for,
    date_parse,
    old_paths,
    post_convert,
    skip_reason,
    slug_derive,
    status_choose,
)
from outlet.importers.substack.reading import Row

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
PAST = dt.datetime(2019, 5, 12, 6, 30, tzinfo=dt.UTC)
CDN = (
    "https://substackcdn.com/image/fetch/w_1456,c_limit,f_auto,q_auto:good,fl_progressive:steep/"
    "https%3A%2F%2Fsubstack-post-media.s3.amazonaws.com%2Fpublic%2Fimages%2Fabc_640x480.jpeg"
)
ORIGINAL = "https://substack-post-media.s3.amazonaws.com/public/images/abc_640x480.jpeg"


def convert(html: str, **row: str):
    return post_convert(
        row=Row(post_id=row.pop("post_id", "1.post"), **row),
        html_text=html,
        author=author_for("Riverside Dispatch"),
        now=NOW,
    )


# --- images -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, original",
    [
        (CDN, ORIGINAL),
        (
            "https://substackcdn.com/image/fetch/https%3A%2F%2Fsubstack-post-media.s3.amazonaws.com"
            "%2Fpublic%2Fimages%2Fabc_640x480.jpeg",
            ORIGINAL,
        ),
        (
            "https://bucketeer-e05bbc84-baa3-437e-9518-adb32be77984.s3.amazonaws.com/public/images/"
            "abc_640x480.jpeg",
            ORIGINAL,
        ),
        ("https://example.org/photo.jpg", "https://example.org/photo.jpg"),
    ],
)
def test_substack_image_addresses_reduce_to_the_original_file(url, original):
    assert original_image_url(url) == original


def test_captioned_image_becomes_a_figure_with_caption_and_alt():
    body = body_convert(
        f'<div class="captioned-image-container"><figure><a class="image-link image2" '
        f'href="{CDN}"><div class="image2-inset"><picture><source srcset="{CDN} 424w">'
        f'<img src="{CDN}" alt="Main Street under water" srcset="{CDN} 424w"></picture>'
        '<div class="image-link-expand"><svg></svg></div></div></a>'
        '<figcaption class="image-caption">Main Street at <em>dawn</em>.</figcaption>'
        "</figure></div>"
    )

    assert body.html == (
        f'<figure class="figure"><img src="{ORIGINAL}" alt="Main Street under water">'
        "<figcaption>Main Street at <em>dawn</em>.</figcaption></figure>"
    )
    assert body.images[ORIGINAL].alt == "Main Street under water"
    assert body.images[ORIGINAL].caption == "Main Street at <em>dawn</em>."


def test_image_alt_comes_from_substacks_attributes_when_the_tag_has_none():
    attrs = '{"src":"' + ORIGINAL + '","alt":"A flooded street"}'
    body = body_convert(
        f'<div class="captioned-image-container"><figure><img src="{CDN}" '
        f"data-attrs='{attrs}'></figure></div>"
    )

    assert f'<img src="{ORIGINAL}" alt="A flooded street">' in body.html


def test_caption_whose_image_is_gone_is_kept_as_text():
    body = body_convert(
        '<div class="captioned-image-container"><figure><figcaption>Dawn.</figcaption>'
        "</figure></div>"
    )

    assert body.html == "<p>Dawn.</p>"


def test_gallery_becomes_one_figure_per_image():
    attrs = (
        '{"gallery":{"images":[{"src":"' + CDN + '"},{"src":"https://example.org/b.png"}],'
        '"caption":"The valley"}}'
    )
    body = body_convert(f"<div class=\"image-gallery-embed\" data-attrs='{attrs}'></div>")

    assert body.html.count('<figure class="figure">') == 2
    assert set(body.images) == {ORIGINAL, "https://example.org/b.png"}
    assert "<em>The valley</em>" in body.html


# --- quotes, embeds, footnotes ---------------------------------------------------------------


def test_newer_gallery_markup_becomes_one_figure_per_image_with_its_caption():
    body = body_convert(
        '<figure class="frontend-components-ImageGallery-module__imageGallery--shoTe"><div>'
        f'<picture><img src="{CDN}" alt="One"></picture>'
        '<picture><img src="https://example.org/b.png" alt="Two"></picture></div>'
        "<figcaption>The <em>valley</em></figcaption></figure>"
    )

    assert body.html == (
        f'<figure class="figure"><img src="{ORIGINAL}" alt="One"></figure>'
        '<figure class="figure"><img src="https://example.org/b.png" alt="Two"></figure>'
        "<p><em>The <em>valley</em></em></p>"
    )


def test_a_plain_figure_becomes_the_sites_figure():
    body = body_convert(
        '<figure><img src="https://example.org/a.png" alt="A"><figcaption>Cap</figcaption></figure>'
    )

    assert body.html == (
        '<figure class="figure"><img src="https://example.org/a.png" alt="A">'
        "<figcaption>Cap</figcaption></figure>"
    )


def test_pullquote_stays_a_pull_quote():
    body = body_convert('<div class="pullquote"><p>We had four hours.</p></div>')

    assert body.html == '<blockquote class="pull-quote"><p>We had four hours.</p></blockquote>'


def test_plain_blockquote_stays_a_quote():
    body = body_convert("<blockquote><p>Said the mayor.</p></blockquote>")

    assert body.html == "<blockquote><p>Said the mayor.</p></blockquote>"


def test_tweet_becomes_a_link_card_without_script():
    body = body_convert(
        '<div class="tweet" data-attrs=\'{"url":"https://twitter.com/fire/status/1?s=20"}\'>'
        '<a class="tweet-link-top" href="https://twitter.com/fire/status/1?s=20">'
        '<span class="tweet-author-name">Riverside Fire</span>'
        '<div class="tweet-text">Evacuation complete &amp; safe.</div></a></div>'
        '<script src="https://platform.twitter.com/widgets.js"></script>'
    )

    assert body.html == (
        '<p><a href="https://twitter.com/fire/status/1" rel="noopener noreferrer">'
        "https://twitter.com/fire/status/1</a></p>"
        "<p><em>Evacuation complete &amp; safe. — Riverside Fire</em></p>"
    )


def test_embedded_post_becomes_a_link_card_with_its_title():
    attrs = '{"url":"https://valley.substack.com/p/reopening","title":"Reopening <the> valley"}'
    body = body_convert(
        f"<div class=\"embedded-post-wrap\" data-attrs='{attrs}'>"
        '<div class="embedded-post-title">Reopening</div></div>'
    )

    assert 'href="https://valley.substack.com/p/reopening"' in body.html
    assert "<em>Reopening &lt;the&gt; valley</em>" in body.html
    assert "embedded-post-title" not in body.html


def test_youtube_embed_becomes_a_link_to_the_video():
    body = body_convert('<div class="youtube-wrap" data-attrs=\'{"videoId":"abc123"}\'></div>')

    assert 'href="https://www.youtube.com/watch?v=abc123"' in body.html


def test_links_to_the_publications_own_posts_point_here():
    body = body_convert(
        '<p><a href="https://riverside.substack.com/p/flood-night?utm_source=x">Then</a> and '
        '<a href="https://valley.substack.com/p/reopening">there</a>.</p>',
        own_host="riverside.substack.com",
    )

    assert 'href="/p/flood-night"' in body.html
    assert 'href="https://valley.substack.com/p/reopening"' in body.html


def test_latex_formula_is_kept_as_its_source_text():
    body = body_convert(
        '<div class="latex-rendered" data-attrs=\'{"persistentExpression":"E = mc^2 < x"}\'></div>'
    )

    assert body.html == "<p>E = mc^2 &lt; x</p>"


def test_embed_without_an_address_is_removed_with_a_note():
    body = body_convert('<p>Before.</p><div class="spotify-wrap"></div>')

    assert body.html == "<p>Before.</p>"
    assert "an embed without an address was removed" in body.notes


def test_old_style_footnotes_are_numbered_by_their_id():
    body = body_convert(
        '<p>One.<a class="footnote-anchor" href="#footnote-2">2</a></p>'
        '<div class="footnote" id="footnote-2"><a href="#footnote-anchor-2" '
        'class="footnote-number">2</a><div class="footnote-content"><p>Two.</p></div></div>'
        '<div class="footnote" id="footnote-1"><a href="#footnote-anchor-1" '
        'class="footnote-number">1</a><div class="footnote-content"><p>One.</p></div></div>'
    )

    assert body.html == ("<p>One.[2]</p><hr><ol><li><p>One.</p></li><li><p>Two.</p></li></ol>")


def test_embedded_post_link_without_its_wrapper_becomes_a_link_card():
    body = body_convert(
        '<a class="embedded-post" href="https://x.substack.com/p/a?utm_source=substack">'
        '<div class="embedded-post-title">A</div></a>'
    )

    assert 'href="https://x.substack.com/p/a?utm_source=substack"' in body.html


def test_empty_paragraphs_are_dropped():
    body = body_convert("<p></p><p> </p><p>Text.</p><p><br></p>")

    assert body.html == "<p>Text.</p><p><br></p>"


def test_footnotes_are_kept_as_a_numbered_list_at_the_end():
    body = body_convert(
        '<p>The gauge read high.<a class="footnote-anchor" id="footnote-anchor-1" '
        'href="#footnote-1">1</a> Then higher.<a class="footnote-anchor" '
        'href="#footnote-2">2</a></p>'
        '<div class="footnote"><a id="footnote-1" class="footnote-number" '
        'href="#footnote-anchor-1">1</a><div class="footnote-content"><p>11.2 feet.</p></div></div>'
        '<div class="footnote"><a id="footnote-2" class="footnote-number" '
        'href="#footnote-anchor-2">2</a><div class="footnote-content"><p>At noon.</p></div></div>'
    )

    assert body.html == (
        "<p>The gauge read high.[1] Then higher.[2]</p>"
        "<hr><ol><li><p>11.2 feet.</p></li><li><p>At noon.</p></li></ol>"
    )


# --- Substack's chrome ---------------------------------------------------------------------


def test_subscribe_widget_and_share_buttons_are_removed_other_buttons_kept():
    body = body_convert(
        "<p>Text.</p>"
        '<div class="subscription-widget-wrap"><div class="subscription-widget">'
        '<p class="cta-caption">Thanks for reading!</p><form><input type="email">'
        '<input type="submit" value="Subscribe"></form></div></div>'
        '<p class="button-wrapper"><a class="button primary" '
        'href="https://x.substack.com/p/a?utm_source=substack&amp;action=share">'
        "<span>Share</span></a></p>"
        '<p class="button-wrapper"><a class="button" href="https://x.substack.com/subscribe?">'
        "<span>Subscribe now</span></a></p>"
        '<p class="button-wrapper"><a class="button" href="https://x.substack.com/p/a/comments">'
        "<span>Leave a comment</span></a></p>"
        '<p class="button-wrapper"><a class="button" href="https://x.substack.com/subscribe?'
        'coupon=abc&amp;gift=true"><span>Give a gift subscription</span></a></p>'
        '<p class="button-wrapper"><a class="button" href="https://fund.example.org/">'
        "<span>Give to the fund</span></a></p>"
        '<p class="button-wrapper"><a class="button" href="https://city.example.org/comments-on-budget">'
        "<span>Comment on the budget</span></a></p>"
        '<div class="paywall-jump"></div><p>More.</p>'
    )

    assert body.html == (
        "<p>Text.</p>"
        '<p><a href="https://fund.example.org/" rel="noopener noreferrer">Give to the fund</a></p>'
        '<p><a href="https://city.example.org/comments-on-budget" rel="noopener noreferrer">'
        "Comment on the budget</a></p>"
        "<p>More.</p>"
    )
    assert "Substack's subscribe boxes were removed" in body.notes


def test_scripts_and_event_handlers_are_removed_with_a_note():
    body = body_convert(
        '<p onclick="steal()">Hi<script>alert(1)</script></p><img src="x.jpg" onerror="bad()">'
    )

    assert "script" not in body.html and "onclick" not in body.html
    assert "onerror" not in body.html
    assert ACTIVE_CONTENT_NOTE in body.notes


def test_embed_frame_that_became_a_link_card_is_not_noted_as_removed():
    body = body_convert(
        '<div class="youtube-wrap" data-attrs=\'{"videoId":"abc123"}\'>'
        '<iframe src="https://www.youtube-nocookie.com/embed/abc123"></iframe></div>'
    )

    assert 'href="https://www.youtube.com/watch?v=abc123"' in body.html
    assert ACTIVE_CONTENT_NOTE not in body.notes


def test_a_whole_html_page_is_read_from_its_body():
    body = body_convert("<html><head><title>T</title></head><body><p>Only this.</p></body></html>")

    assert body.html == "<p>Only this.</p>"


# --- posts ----------------------------------------------------------------------------------


def test_published_post_for_everyone_is_published_at_its_date():
    post = convert(
        "<p>Body.</p>",
        post_id="101.flood-night",
        post_date="2019-05-12T06:30:00.000Z",
        is_published="true",
        type="newsletter",
        audience="everyone",
        title="The night the river rose",
        subtitle="How a town spent its &amp; night.",
    )

    assert (post.status, post.publish_at, post.held_because) == (
        Article.Status.PUBLISHED,
        PAST,
        "",
    )
    assert (post.source_id, post.kind, post.slug) == ("101", "article", "flood-night")
    assert post.title == "The night the river rose"
    assert post.excerpt == "How a town spent its & night."
    assert [a.name for a in post.authors] == ["Riverside Dispatch"]
    assert post.old_paths == ["/p/flood-night", "/p/flood-night/", "/p/flood-night/comments"]


def test_unpublished_post_is_a_draft():
    post = convert("<p>Notes.</p>", post_id="102.budget", is_published="false")

    assert post.status == Article.Status.DRAFT and post.held_because == ""


@pytest.mark.parametrize("audience", ["only_paid", "founding", "only_free", "something_new"])
def test_writing_not_for_everyone_is_held_as_a_draft_with_the_reason(audience):
    choice = status_choose(is_published="TRUE", audience=audience, publish_at=PAST, now=NOW)

    assert choice.status == Article.Status.DRAFT
    assert "Substack" in choice.held_because


def test_published_post_dated_in_the_future_is_scheduled():
    later = NOW + dt.timedelta(days=1)
    choice = status_choose(is_published="true", audience="everyone", publish_at=later, now=NOW)

    assert choice.status == Article.Status.SCHEDULED


def test_page_type_becomes_a_page():
    assert convert("<p>About us.</p>", post_id="108.about", type="page").kind == "page"


def test_thread_is_skipped_with_a_reason_and_other_types_come_across():
    assert skip_reason(Row(post_id="106.open", type="thread"))
    assert skip_reason(Row(post_id="101.a", type="newsletter")) == ""
    assert skip_reason(Row(post_id="107.b", type="podcast")) == ""


def test_podcast_links_its_audio_at_the_top_with_a_note():
    post = convert(
        "<p>Our first episode.</p>",
        post_id="107.episode-one",
        type="podcast",
        podcast_url="https://example.org/episode-one.mp3",
    )

    assert post.body.startswith('<p><a href="https://example.org/episode-one.mp3"')
    assert post.body.endswith("<p>Our first episode.</p>")
    assert any("podcast" in note for note in post.notes)


def test_podcast_address_that_is_not_a_web_address_is_not_linked():
    post = convert("<p>Ep.</p>", post_id="7.ep", type="podcast", podcast_url="javascript:x()")

    assert "javascript" not in post.body


def test_slug_comes_from_the_post_id_else_from_the_title():
    assert slug_derive(post_id="123456.my-slug", title="T") == "my-slug"
    assert slug_derive(post_id="123456.", title="Café über alles") == "cafe-uber-alles-123456"
    assert slug_derive(post_id="123456", title="") == "post-123456"


def test_draft_without_a_slug_has_no_old_address():
    assert old_paths("123456.") == []


def test_non_ascii_title_is_kept_and_its_slug_is_ascii():
    post = convert("<p>x</p>", post_id="104.", title="Café owners’ “Zürich” plan")

    assert post.title == "Café owners’ “Zürich” plan"
    assert post.slug == "cafe-owners-zurich-plan-104"


def test_dates_are_read_in_utc():
    assert date_parse("2019-05-12T06:30:00.000Z") == PAST
    assert date_parse("2019-05-12T06:30:00") == PAST
    assert date_parse("") is None and date_parse("yesterday") is None


def test_missing_title_falls_back_to_the_slug():
    assert convert("<p>x</p>", post_id="5.river-notes", title="").title == "river notes"


def test_a_post_whose_html_cannot_be_read_fails_alone(monkeypatch):
    from outlet.importers.substack import importing
    from outlet.importers.substack.reading import ExportPost

    def unreadable(**kwargs):
        raise ValueError("bad bytes")

    monkeypatch.setattr(importing, "post_convert", unreadable)
    post = importing.post_for(
        ExportPost(row=Row(post_id="9.broken", title="Broken"), html="<p>x"),
        author=author_for("Staff"),
        now=NOW,
    )

    assert (post.source_id, post.slug) == ("9", "broken")
    assert post.failed_because == "its HTML could not be read (bad bytes)"
