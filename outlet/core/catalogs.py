"""The translation catalogs' health, for `manage.py i18n_check` (CI).

Three questions, each answered by a function that returns one line per problem:

- `catalog_problems`: does a shipped catalog (locale/<ll>/LC_MESSAGES/*.po) have an
  untranslated or fuzzy entry, or a compiled .mo beside it that no longer matches it?
  The .mo files are build output (`make messages` runs compilemessages; they are not
  committed), so a missing .mo is fine; a stale one would serve old text and is not.
- `catalog_missing_msgids`: would `makemessages` add a msgid the catalogs lack, i.e. is a
  marked string not in the catalogs yet? makemessages runs into a scratch directory and
  the msgid sets (with their context) are compared, so the shipped files are untouched.
- `template_untranslated_text`: does a template show readers words outside the
  translation tags? Django's own Lexer splits the template; the text between tags is
  parsed as HTML, and its character data and reader-visible attributes (alt, title,
  placeholder, aria-label, content of description meta tags) must hold no letters once
  URLs, entities and {{ variables }} are set aside. Script and style bodies are skipped.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import polib
from django.core.management import call_command
from django.template.base import Lexer, TokenType
from django.test.utils import override_settings

#: What makemessages skips besides the catalogs themselves: the virtualenv, runtime data,
#: tests and benchmarks (their strings are not shipped), vendored or minified scripts.
SOURCE_IGNORED = ("locale", ".venv", "var", "tests", "benchmarks", "node_modules", "*.min.js")
#: Attributes whose values people read or hear.
READER_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label", "aria-description", "label"}
_BUTTON_INPUTS = ("submit", "button", "reset")
#: Template tags whose bodies are translated text.
_TRANSLATED_BLOCKS = {"blocktranslate": "endblocktranslate", "blocktrans": "endblocktrans"}
_SKIPPED_BLOCKS = {"comment": "endcomment", "verbatim": "endverbatim"}
_URL = re.compile(r"(?:https?://|mailto:|/)[^\s<>\"']*")
#: Stands for a template tag or variable in the text handed to the HTML parser.
_TAG_MARK = "\x00"
_VARIABLE_TAG = re.compile("</?" + _TAG_MARK + "[^>]*>")


# --- (a) the shipped catalogs ------------------------------------------------------


def catalog_files(locale_dir: Path) -> list[Path]:
    return sorted(locale_dir.glob("*/LC_MESSAGES/*.po"))


def _entry_label(entry: polib.POEntry) -> str:
    text = entry.msgid if len(entry.msgid) <= 60 else entry.msgid[:57] + "..."
    context = f" [context {entry.msgctxt}]" if entry.msgctxt else ""
    return f"{text!r}{context}"


def _is_untranslated(entry: polib.POEntry) -> bool:
    if entry.msgid_plural:
        return not entry.msgstr_plural or not all(entry.msgstr_plural.values())
    return not entry.msgstr


def catalog_problems(*, locale_dir: Path) -> list[str]:
    """Untranslated and fuzzy entries, and stale .mo files, in every shipped catalog."""
    problems: list[str] = []
    for po_path in catalog_files(locale_dir):
        name = po_path.relative_to(locale_dir)
        catalog = polib.pofile(str(po_path))
        for entry in catalog:
            if entry.obsolete or not entry.msgid:
                continue
            if "fuzzy" in entry.flags:
                problems.append(f"{name}:{entry.linenum}: fuzzy: {_entry_label(entry)}")
            elif _is_untranslated(entry):
                problems.append(f"{name}:{entry.linenum}: untranslated: {_entry_label(entry)}")
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and _translations(polib.mofile(str(mo_path))) != _translations(catalog):
            problems.append(f"{mo_path.relative_to(locale_dir)}: stale: compile it again")
    return problems


def _translations(catalog: polib._BaseFile) -> set[tuple]:
    """What a compiled catalog serves: translated, non-fuzzy entries (msgfmt's rule)."""
    return {
        (
            entry.msgctxt or "",
            entry.msgid,
            entry.msgid_plural or "",
            entry.msgstr,
            tuple(sorted(entry.msgstr_plural.items())),
        )
        for entry in catalog
        if entry.msgid
        and not entry.obsolete
        and "fuzzy" not in entry.flags
        and not _is_untranslated(entry)
    }


# --- (b) strings marked in the code but missing from the catalogs -------------------


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _msgids(po_path: Path) -> set[tuple[str, str]]:
    if not po_path.exists():
        return set()
    return {
        (entry.msgctxt or "", entry.msgid)
        for entry in polib.pofile(str(po_path))
        if entry.msgid and not entry.obsolete
    }


def marked_msgids(*, source_root: Path, domain: str) -> set[tuple[str, str]]:
    """Every (context, msgid) makemessages finds under source_root for a domain."""
    # makemessages writes each file's strings to the first locale path whose parent holds
    # the file: the scratch directory sits in source_root and comes first, so everything
    # goes there, never into the shipped catalogs (a hidden directory is not walked).
    with tempfile.TemporaryDirectory(prefix=".i18n-check-", dir=source_root) as scratch:
        scratch_locale = Path(scratch)
        with override_settings(LOCALE_PATHS=[str(scratch_locale)]), _working_directory(source_root):
            call_command(
                "makemessages",
                locale=["en"],
                domain=domain,
                ignore_patterns=list(SOURCE_IGNORED),
                no_obsolete=True,
                verbosity=0,
            )
        return _msgids(scratch_locale / "en" / "LC_MESSAGES" / f"{domain}.po")


def catalog_missing_msgids(
    *, source_root: Path, locale_dir: Path, domains: Iterable[str] = ("django", "djangojs")
) -> list[str]:
    """Strings marked for translation in the code that a shipped catalog lacks."""
    problems: list[str] = []
    languages = sorted(p.name for p in locale_dir.iterdir() if p.is_dir())
    for domain in domains:
        marked = marked_msgids(source_root=source_root, domain=domain)
        for language in languages:
            po_path = locale_dir / language / "LC_MESSAGES" / f"{domain}.po"
            missing = marked - _msgids(po_path)
            for context, msgid in sorted(missing):
                label = msgid if len(msgid) <= 60 else msgid[:57] + "..."
                where = f" [context {context}]" if context else ""
                problems.append(
                    f"{po_path.relative_to(locale_dir)}: not in the catalog: {label!r}{where}"
                )
    return problems


# --- (c) templates with words outside the translation tags --------------------------


class _ReaderTextFinder(HTMLParser):
    """Collects (line, text) for character data and reader-visible attribute values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skipping += 1
        attributes = dict(attrs)
        for name, value in attrs:
            if value and name in READER_ATTRIBUTES:
                self.found.append((self.getpos()[0], value))
        if tag == "meta" and attributes.get("name") == "description" and attributes.get("content"):
            self.found.append((self.getpos()[0], attributes["content"] or ""))
        if tag == "input" and attributes.get("type") in _BUTTON_INPUTS and attributes.get("value"):
            self.found.append((self.getpos()[0], attributes["value"] or ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("script", "style"):
            self._skipping -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.found.append((self.getpos()[0], data))


def _has_words(text: str) -> bool:
    text = _URL.sub(" ", text.replace(_TAG_MARK, " "))
    return any(character.isalpha() for character in text)


def _text_outside_tags(source: str) -> str:
    """The template with every tag, variable and translated or skipped block replaced by a
    mark (keeping line breaks), so only the words a translator cannot reach remain."""
    pieces: list[str] = []
    closing: str | None = None
    for token in Lexer(source).tokenize():
        blank = _TAG_MARK + "\n" * token.contents.count("\n")
        if closing is not None:
            if token.token_type == TokenType.BLOCK and token.contents.split()[0] == closing:
                closing = None
            pieces.append(blank)
            continue
        if token.token_type == TokenType.TEXT:
            pieces.append(token.contents)
            continue
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents.split() else ""
            closing = _TRANSLATED_BLOCKS.get(name) or _SKIPPED_BLOCKS.get(name)
        pieces.append(blank)
    # A tag whose name is a variable (<{{ heading }} class="…">) is markup, not text.
    return _VARIABLE_TAG.sub(lambda m: _TAG_MARK + "\n" * m.group().count("\n"), "".join(pieces))


def template_untranslated_lines(path: Path) -> list[tuple[int, str]]:
    """(line, text) for each piece of reader-visible text outside translation tags."""
    finder = _ReaderTextFinder()
    finder.feed(_text_outside_tags(path.read_text(encoding="utf-8")))
    finder.close()
    return [
        (line, " ".join(text.replace(_TAG_MARK, " ").split()))
        for line, text in finder.found
        if _has_words(text)
    ]


#: Templates that are not reader-facing text: the admin's own, machine-read files.
TEMPLATE_SKIPPED_PARTS = ("admin",)
TEMPLATE_SKIPPED_NAMES = ("robots.txt",)
TEMPLATE_SUFFIXES = (".html", ".txt")


def reader_templates(paths: Iterable[Path]) -> list[Path]:
    """The reader-facing templates under the given files or directories."""
    found: list[Path] = []
    for path in paths:
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        for candidate in candidates:
            if (
                candidate.is_file()
                and candidate.suffix in TEMPLATE_SUFFIXES
                and candidate.name not in TEMPLATE_SKIPPED_NAMES
                and not any(part in TEMPLATE_SKIPPED_PARTS for part in candidate.parts)
            ):
                found.append(candidate)
    return found


def template_untranslated_text(*, paths: Iterable[Path], root: Path | None = None) -> list[str]:
    """One line per piece of untranslated reader-visible text in the templates."""
    problems: list[str] = []
    for template in reader_templates(paths):
        name = template.relative_to(root) if root and template.is_relative_to(root) else template
        for line, text in template_untranslated_lines(template):
            shown = text if len(text) <= 70 else text[:67] + "..."
            problems.append(f"{name}:{line}: not translatable: {shown!r}")
    return problems
