"""The pure WordPress conversions: what a post's stored text becomes on this site."""

import datetime as dt

from outlet.articles.models import Article
from outlet.importers.wordpress.autop import wpautop
from outlet.importers.wordpress.blocks import blocks_parse
from outlet.importers.wordpress.converting import (
    body_convert,
    date_parse,
    seo_fields,
    slug_derive,
    status_choose,
)
from outlet.importers.wordpress.shortcodes import Attachment, parse_attributes

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_classic_text_gets_the_paragraphs_wordpress_showed():
    text = "First paragraph\nwith a line break.\n\nSecond paragraph.\n\n\n<ul>\n<li>one</li>\n</ul>"

    assert wpautop(text) == (
        "<p>First paragraph<br />\nwith a line break.</p>\n<p>Second paragraph.</p>\n"
        "<ul>\n<li>one</li>\n</ul>\n"
    )


def test_classic_text_keeps_preformatted_text_and_blockquotes_whole():
    text = "Intro\n\n<pre>line 1\n\nline 2</pre>\n\n<blockquote>Said\n\nagain</blockquote>"

    html = wpautop(text)

    assert "<pre>line 1\n\nline 2</pre>" in html
    assert "<blockquote><p>Said</p>\n<p>again</p></blockquote>" in html


def test_classic_post_body_is_converted_and_sanitised():
    body, conversion = body_convert(
        "Hello <strong>readers</strong>.\n\nSecond<script>alert(1)</script> part."
        '\n\n<a href="https://example.org/" onclick="steal()">link</a>'
    )

    assert body.startswith("<p>Hello <strong>readers</strong>.</p>")
    assert "<p>Second part.</p>" in body
    assert "script" not in body and "alert" not in body and "onclick" not in body
    assert "scripts, frames or event handlers were removed" in conversion.notes


def test_caption_shortcode_becomes_a_figure_with_alt_and_caption():
    body, conversion = body_convert(
        '[caption id="attachment_7" align="alignnone" width="800"]'
        '<a href="https://old.example/photo.jpg"><img class="size-large wp-image-7" '
        'src="https://old.example/wp-content/uploads/2019/05/photo.jpg" alt="A flooded street" '
        'width="800" height="600" /></a> Water rose overnight.[/caption]\n\nAfter the figure.'
    )

    assert (
        '<figure class="figure"><img src="https://old.example/wp-content/uploads/2019/05/photo.jpg"'
        ' alt="A flooded street"><figcaption>Water rose overnight.</figcaption></figure>'
    ) in body
    assert "<p>After the figure.</p>" in body
    assert conversion.images == {"https://old.example/wp-content/uploads/2019/05/photo.jpg": 7}


def test_gallery_shortcode_becomes_figures_of_the_exported_attachments():
    attachments = {
        3: Attachment(post_id=3, url="https://old.example/a.jpg", alt="Alt A", caption="Cap A"),
        4: Attachment(post_id=4, url="https://old.example/b.jpg", alt="Alt B"),
    }

    body, conversion = body_convert('[gallery ids="3,4,99"]', attachments=attachments)

    assert body.count('<figure class="figure">') == 2
    assert '<img src="https://old.example/a.jpg" alt="Alt A"><figcaption>Cap A</figcaption>' in body
    assert "gallery image 99 is not in the export" in conversion.notes


def test_embed_video_and_audio_shortcodes_become_links():
    body, _ = body_convert(
        "[embed]https://www.youtube.com/watch?v=abc[/embed]\n\n"
        '[video mp4="https://old.example/clip.mp4"][/video]\n\n[audio mp3="https://old.example/a.mp3"]'
    )

    assert '<a href="https://www.youtube.com/watch?v=abc" rel="noopener noreferrer">' in body
    assert 'href="https://old.example/clip.mp4"' in body
    assert 'href="https://old.example/a.mp3"' in body


def test_unknown_shortcodes_are_kept_as_text_and_reported():
    body, conversion = body_convert('Before [contact-form-7 id="5"] after')

    assert '[contact-form-7 id="5"]' in body
    assert "the shortcode [contact-form-7] was kept as text" in conversion.notes


def test_shortcode_attributes_in_every_quoting_style():
    assert parse_attributes(" ids=\"1,2\" columns='3' link=file") == {
        "ids": "1,2",
        "columns": "3",
        "link": "file",
    }


def test_blocks_parse_nested_and_void_blocks():
    document = blocks_parse(
        "<!-- wp:group --><div><!-- wp:paragraph --><p>In</p><!-- /wp:paragraph --></div>"
        "<!-- /wp:group -->\n<!-- wp:separator /-->"
    )

    group, newline, separator = document
    assert group.name == "core/group"
    assert group.parts[1].name == "core/paragraph"
    assert newline == "\n"
    assert separator.name == "core/separator" and separator.parts == []


PULLQUOTE = (
    '<!-- wp:pullquote -->\n<figure class="wp-block-pullquote"><blockquote><p>The river '
    "does not wait.</p><cite>Mayor Ada Lind</cite></blockquote></figure>\n<!-- /wp:pullquote -->"
)


def test_pullquote_block_stays_a_pull_quote():
    body, _ = body_convert(PULLQUOTE)

    assert body == (
        '<blockquote class="pull-quote"><p>The river does not wait.</p>'
        "<p>— Mayor Ada Lind</p></blockquote>"
    )


def test_image_block_keeps_alt_and_caption():
    body, conversion = body_convert(
        '<!-- wp:image {"id":12,"sizeSlug":"large"} -->\n<figure class="wp-block-image size-large">'
        '<img src="https://old.example/wp-content/uploads/2020/01/dam.jpg" alt="The dam at dusk" '
        'class="wp-image-12"/><figcaption>The dam, <em>1962</em>.</figcaption></figure>\n'
        "<!-- /wp:image -->"
    )

    assert body == (
        '<figure class="figure"><img src="https://old.example/wp-content/uploads/2020/01/dam.jpg" '
        'alt="The dam at dusk"><figcaption>The dam, <em>1962</em>.</figcaption></figure>'
    )
    assert conversion.images == {"https://old.example/wp-content/uploads/2020/01/dam.jpg": 12}


def test_gallery_block_becomes_one_figure_per_image():
    body, _ = body_convert(
        '<!-- wp:gallery {"linkTo":"none"} --><figure class="wp-block-gallery">'
        '<!-- wp:image {"id":1} --><figure class="wp-block-image">'
        '<img src="https://o.example/1.jpg" alt="One"/></figure><!-- /wp:image -->'
        '<!-- wp:image {"id":2} --><figure class="wp-block-image">'
        '<img src="https://o.example/2.jpg" alt="Two"/><figcaption>Second</figcaption></figure>'
        "<!-- /wp:image -->"
        "</figure><!-- /wp:gallery -->"
    )

    assert body == (
        '<figure class="figure"><img src="https://o.example/1.jpg" alt="One"></figure>'
        '<figure class="figure"><img src="https://o.example/2.jpg" alt="Two">'
        "<figcaption>Second</figcaption></figure>"
    )


def test_embed_block_becomes_a_link_card_without_third_party_script():
    body, _ = body_convert(
        '<!-- wp:embed {"url":"https://twitter.com/x/status/1","type":"rich",'
        '"providerNameSlug":"twitter"} -->\n<figure class="wp-block-embed"><div '
        'class="wp-block-embed__wrapper">\nhttps://twitter.com/x/status/1\n</div>'
        "<figcaption>The post</figcaption></figure>\n<!-- /wp:embed -->"
    )

    assert body == (
        '<p><a href="https://twitter.com/x/status/1" rel="noopener noreferrer">'
        "https://twitter.com/x/status/1</a></p><p><em>The post</em></p>"
    )


def test_table_separator_and_html_blocks():
    body, _ = body_convert(
        '<!-- wp:table --><figure class="wp-block-table"><table><tbody><tr><td>Year</td>'
        "<td>Votes</td></tr></tbody></table><figcaption>Results</figcaption></figure>"
        "<!-- /wp:table -->"
        '<!-- wp:separator --><hr class="wp-block-separator"/><!-- /wp:separator -->'
        '<!-- wp:html --><p>Raw <span onclick="x()">html</span></p><script>bad()</script>'
        "<!-- /wp:html -->"
    )

    assert body == (
        "<table><tbody><tr><td>Year</td><td>Votes</td></tr></tbody></table>"
        "<p><em>Results</em></p><hr><p>Raw html</p>"
    )


def test_blocks_without_a_counterpart_keep_their_text_and_are_reported():
    body, conversion = body_convert(
        '<!-- wp:acme/countdown {"to":"2020"} --><div class="acme">Five days left</div>'
        "<!-- /wp:acme/countdown -->"
    )

    assert "Five days left" in body
    assert "the block acme/countdown was kept as sanitised HTML" in conversion.notes


def test_empty_slug_is_derived_from_the_title_and_kept_unique_by_post_id():
    assert slug_derive(slug="", title="Flood: the night the river rose", post_id=41) == (
        "flood-the-night-the-river-rose-41"
    )
    assert slug_derive(slug="", title="", post_id=42) == "post-42"
    assert slug_derive(slug="kept-slug", title="Whatever", post_id=43) == "kept-slug"


def test_only_what_wordpress_showed_everyone_is_public():
    later = NOW + dt.timedelta(days=2)

    def choose(wp_status, password="", publish_at=NOW):
        return status_choose(wp_status=wp_status, password=password, publish_at=publish_at, now=NOW)

    assert choose("publish").status == Article.Status.PUBLISHED
    assert choose("publish", password="secret") == (
        status_choose(wp_status="draft", password="", publish_at=NOW, now=NOW).__class__(
            Article.Status.DRAFT, "password-protected on WordPress"
        )
    )
    assert choose("private").status == Article.Status.DRAFT
    assert choose("private").held_because == "private on WordPress"
    assert choose("draft").status == Article.Status.DRAFT
    assert choose("pending").status == Article.Status.DRAFT
    assert choose("future", publish_at=later).status == Article.Status.SCHEDULED


def test_a_password_protected_scheduled_post_is_never_public():
    for publish_at in (NOW + dt.timedelta(days=2), NOW - dt.timedelta(days=2)):
        choice = status_choose(
            wp_status="future", password="secret", publish_at=publish_at, now=NOW
        )
        assert choice.status == Article.Status.DRAFT
        assert choice.held_because == "password-protected on WordPress"


def test_publish_time_prefers_gmt_and_falls_back_to_local_time_in_the_site_zone():
    assert date_parse(gmt="2019-05-12 08:30:00", local="x", site_timezone="Europe/Berlin") == (
        dt.datetime(2019, 5, 12, 8, 30, tzinfo=dt.UTC)
    )
    local = date_parse(
        gmt="0000-00-00 00:00:00", local="2019-05-12 10:30:00", site_timezone="Europe/Berlin"
    )
    assert local == dt.datetime(2019, 5, 12, 8, 30, tzinfo=dt.UTC)
    assert date_parse(gmt="", local="", site_timezone="UTC") is None


def test_seo_fields_from_yoast_or_rank_math_without_template_variables():
    assert seo_fields({"_yoast_wpseo_title": "Flood night", "_yoast_wpseo_metadesc": "How"}) == {
        "seo_title": "Flood night",
        "seo_description": "How",
    }
    assert seo_fields(
        {"rank_math_title": "%title% %sep% %sitename%", "rank_math_description": "D"}
    ) == {
        "seo_title": "",
        "seo_description": "D",
    }


def test_an_image_without_alt_text_takes_the_alt_its_attachment_has_in_wordpress():
    attachments = {12: Attachment(post_id=12, url="https://o.example/d.jpg", alt="The dam")}

    block, _ = body_convert(
        '<!-- wp:image {"id":12} --><figure class="wp-block-image"><img src="https://o.example/d.jpg"'
        ' alt="" class="wp-image-12"/></figure><!-- /wp:image -->',
        attachments=attachments,
    )
    classic, _ = body_convert(
        '[caption id="attachment_12"]<img class="wp-image-12" src="https://o.example/d.jpg" /> Cap'
        "[/caption]",
        attachments=attachments,
    )

    assert '<img src="https://o.example/d.jpg" alt="The dam">' in block
    assert '<img src="https://o.example/d.jpg" alt="The dam">' in classic


def test_percent_encoded_slugs_are_decoded_before_they_are_cleaned():
    assert slug_derive(slug="caf%c3%a9-culture", title="", post_id=1) == "cafe-culture"
