"""The Substack fixture export (a folder), and the .zip Substack mails built from it."""

import zipfile
from pathlib import Path

EXPORT = Path(__file__).parent / "fixtures" / "substack"


def zip_export(target: Path, *, prefix: str = "", extra: dict[str, bytes] | None = None) -> Path:
    """The fixture folder as a zip (optionally under a folder), plus `extra` members."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(EXPORT.rglob("*")):
            if file.is_file():
                archive.write(file, prefix + file.relative_to(EXPORT).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return target
