"""manage.py i18n_check: the CI check that the translations are ready to ship.

Each test builds a small project (a template, a catalog) in tmp_path, so the
behaviour is proved on fixtures, not on the real catalogs translators are filling.
"""

from pathlib import Path

import polib
import pytest
from django.core.management import CommandError, call_command

from outlet.core.catalogs import catalog_problems, template_untranslated_text

HEADER = {
    "Content-Type": "text/plain; charset=UTF-8",
    "Plural-Forms": "nplurals=2; plural=(n != 1);",
}


def catalog(path: Path, entries: list[polib.POEntry]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    po = polib.POFile()
    po.metadata = HEADER
    for entry in entries:
        po.append(entry)
    po.save(str(path))
    return path


def project(tmp_path: Path, template: str, entries: list[polib.POEntry]) -> tuple[Path, Path]:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text(template)
    locale = tmp_path / "locale"
    catalog(locale / "es" / "LC_MESSAGES" / "django.po", entries)
    catalog(locale / "es" / "LC_MESSAGES" / "djangojs.po", [])
    return tmp_path, locale


def run(root: Path, locale: Path, *extra: str) -> tuple[str, str | None]:
    from io import StringIO

    out = StringIO()
    try:
        call_command(
            "i18n_check",
            "--source-root",
            str(root),
            "--locale-dir",
            str(locale),
            *extra,
            stdout=out,
        )
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


def test_complete_catalog_and_marked_template_pass(tmp_path):
    root, locale = project(
        tmp_path,
        '{% load i18n %}<p>{% translate "Hello" %}</p>',
        [polib.POEntry(msgid="Hello", msgstr="Hola")],
    )

    out, error = run(root, locale)

    assert error is None
    assert "ready" in out


def test_untranslated_and_fuzzy_entries_fail_naming_each(tmp_path):
    locale = tmp_path / "locale"
    catalog(
        locale / "fr" / "LC_MESSAGES" / "django.po",
        [
            polib.POEntry(msgid="Donate", msgstr=""),
            polib.POEntry(msgid="Search", msgstr="Rechercher", flags=["fuzzy"]),
            polib.POEntry(
                msgid="%(counter)s result",
                msgid_plural="%(counter)s results",
                msgstr_plural={0: "%(counter)s résultat", 1: ""},
            ),
            polib.POEntry(msgid="Home", msgstr="Accueil"),
        ],
    )

    problems = catalog_problems(locale_dir=locale)

    assert len(problems) == 3
    assert any("untranslated: 'Donate'" in p for p in problems)
    assert any("fuzzy: 'Search'" in p for p in problems)
    assert any("untranslated: '%(counter)s result'" in p for p in problems)
    assert all(p.startswith("fr/LC_MESSAGES/django.po:") for p in problems)


def test_stale_compiled_catalog_fails_and_a_fresh_one_passes(tmp_path):
    locale = tmp_path / "locale"
    po_path = catalog(
        locale / "es" / "LC_MESSAGES" / "django.po", [polib.POEntry(msgid="Home", msgstr="Inicio")]
    )
    polib.pofile(str(po_path)).save_as_mofile(str(po_path.with_suffix(".mo")))
    assert catalog_problems(locale_dir=locale) == []

    catalog(po_path, [polib.POEntry(msgid="Home", msgstr="Portada")])

    assert catalog_problems(locale_dir=locale) == [
        "es/LC_MESSAGES/django.mo: stale: compile it again"
    ]


def test_a_marked_string_missing_from_the_catalog_fails(tmp_path):
    root, locale = project(
        tmp_path,
        '{% load i18n %}<p>{% translate "Hello" %}</p>'
        '<p>{% translate "Goodbye" context "farewell" %}</p>',
        [polib.POEntry(msgid="Hello", msgstr="Hola")],
    )

    out, error = run(root, locale, "--skip-templates")

    assert error is not None and "1 problem" in error
    assert "es/LC_MESSAGES/django.po: not in the catalog: 'Goodbye' [context farewell]" in out
    # The shipped catalogs are left as they were, and no other language appears.
    assert [e.msgid for e in polib.pofile(str(locale / "es/LC_MESSAGES/django.po"))] == ["Hello"]
    assert sorted(p.name for p in locale.iterdir()) == ["es"]
    assert sorted(p.name for p in root.iterdir()) == ["locale", "templates"]


def test_template_text_outside_translation_tags_is_listed_with_its_line(tmp_path):
    template = tmp_path / "page.html"
    template.write_text(
        "{% load i18n %}\n"
        '<h1>{% translate "Fine" %}</h1>\n'
        "<p>Not marked</p>\n"
        '<img src="{{ url }}" alt="A photo">\n'
        '<input type="submit" value="Send">\n'
        "{% blocktranslate %}Marked {{ name }} too{% endblocktranslate %}\n"
        "<p>{{ article.headline }} · https://example.org/a &nbsp; 12:30</p>\n"
        '<{{ heading }} class="card">{{ title }}</{{ heading }}>\n'
        "<script>var words = 'not text';</script>\n"
        "{# a comment #}{% comment %}Also a comment{% endcomment %}\n"
    )

    problems = template_untranslated_text(paths=[template], root=tmp_path)

    assert problems == [
        "page.html:3: not translatable: 'Not marked'",
        "page.html:4: not translatable: 'A photo'",
        "page.html:5: not translatable: 'Send'",
    ]


def test_every_reader_facing_template_of_the_project_is_marked(settings):
    templates = Path(settings.BASE_DIR) / "templates"

    assert template_untranslated_text(paths=[templates], root=templates) == []


@pytest.mark.parametrize("name", ["admin/base_site.html", "robots.txt"])
def test_admin_and_machine_read_templates_are_not_scanned(settings, name):
    path = Path(settings.BASE_DIR) / "templates" / name

    assert template_untranslated_text(paths=[path]) == []
