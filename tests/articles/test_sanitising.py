import pytest

from outlet.articles.models import Article
from outlet.articles.sanitising import sanitise_body
from outlet.articles.services import article_save
from tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db

HOSTILE = (
    '<p style="position:fixed">Hello<script>alert("x")</script>'
    '<img src="/media/a.jpg" alt="A chart" onerror="alert(1)">'
    '<a href="javascript:alert(2)">click</a> '
    '<a href="https://example.org/" onclick="steal()">ok</a></p>'
    '<blockquote class="pull-quote attacker"><p>Quoted</p></blockquote>'
    "<iframe src='https://evil.example/'></iframe><style>body{display:none}</style>"
)


def test_sanitiser_removes_scripts_handlers_javascript_urls_and_styles():
    clean = sanitise_body(HOSTILE)

    assert "<script" not in clean and "alert(" not in clean
    assert "onerror" not in clean and "onclick" not in clean
    assert "javascript:" not in clean
    assert "style" not in clean
    assert "iframe" not in clean
    assert '<a href="https://example.org/" rel="noopener noreferrer">ok</a>' in clean
    assert '<blockquote class="pull-quote"><p>Quoted</p></blockquote>' in clean
    assert '<img src="/media/a.jpg" alt="A chart">' in clean


def test_headings_stay_under_the_page_title():
    assert sanitise_body("<h1>Top</h1><h4>Deep</h4>") == "<h2>Top</h2><h3>Deep</h3>"


def test_saving_an_article_cleans_its_body_whoever_saves_it(editor):
    article = ArticleFactory(status=Article.Status.DRAFT)
    article.body = HOSTILE

    article_save(article=article, user=editor)

    article.refresh_from_db()
    assert "<script" not in article.body
    assert "onerror" not in article.body
    assert "javascript:" not in article.body
    assert "style=" not in article.body
    assert "Hello" in article.body


def test_system_saves_are_cleaned_too():
    article = ArticleFactory(status=Article.Status.DRAFT)
    article.body = '<p onmouseover="x()">Text</p>'

    article_save(article=article)

    article.refresh_from_db()
    assert article.body == "<p>Text</p>"
