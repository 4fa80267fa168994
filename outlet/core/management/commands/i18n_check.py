"""Fail (exit 1, one line per problem) when the translations are not ready to ship.

    manage.py i18n_check                       all three checks on the project
    manage.py i18n_check --templates templates/articles templates/newsletters
    manage.py i18n_check --skip-catalogs       only strings not marked / not in the catalogs

The checks are in outlet/core/catalogs.py. The .mo files are built by `make messages`
(compilemessages), not committed; this command only refuses a stale one.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from outlet.core.catalogs import (
    catalog_missing_msgids,
    catalog_problems,
    template_untranslated_text,
)


class Command(BaseCommand):
    help = "Check the translation catalogs and the templates' reader-facing text (CI)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--locale-dir",
            type=Path,
            default=Path(settings.LOCALE_PATHS[0]),
            help="The shipped catalogs (default: the project's locale/).",
        )
        parser.add_argument(
            "--source-root",
            type=Path,
            default=Path(settings.BASE_DIR),
            help="Where makemessages looks for marked strings (default: the project).",
        )
        parser.add_argument(
            "--templates",
            type=Path,
            nargs="*",
            default=None,
            help="Templates (files or directories) to scan for untranslated text "
            "(default: the project's templates/, without admin/).",
        )
        parser.add_argument("--skip-catalogs", action="store_true", help="Skip check (a).")
        parser.add_argument("--skip-sources", action="store_true", help="Skip check (b).")
        parser.add_argument("--skip-templates", action="store_true", help="Skip check (c).")

    def handle(self, *args, **options) -> None:
        locale_dir: Path = options["locale_dir"].resolve()
        source_root: Path = options["source_root"].resolve()
        problems: list[str] = []
        if not options["skip_catalogs"]:
            problems += catalog_problems(locale_dir=locale_dir)
        if not options["skip_sources"]:
            problems += catalog_missing_msgids(source_root=source_root, locale_dir=locale_dir)
        if not options["skip_templates"]:
            paths = options["templates"] or [source_root / "templates"]
            problems += template_untranslated_text(
                paths=[path.resolve() for path in paths], root=source_root
            )
        for problem in problems:
            self.stdout.write(problem)
        if problems:
            raise CommandError(f"i18n_check: {len(problems)} problem(s); see the lines above.")
        self.stdout.write("i18n_check: the catalogs and templates are ready.")
