"""The outlet's own django-prose-editor extensions (outlet/static/js/prose-extensions.js),
named in settings.DJANGO_PROSE_EDITOR_EXTENSIONS; models switch them on in their editor
configs like the built-in ones. Imported by settings: nothing here may touch Django apps."""

from js_asset import static_lazy


def _adds_no_markup(config, allowlist) -> None:
    """Our editor extensions change behaviour only: the sanitiser's allowlist stays."""


PROSE_EDITOR_EXTENSIONS = [
    {
        "js": [static_lazy("js/prose-extensions.js")],
        "extensions": {"NoInjectedStyles": _adds_no_markup, "FigureCaptionExit": _adds_no_markup},
    }
]
