"""Image uploads: what we accept, and the resized renditions pages offer in srcset.

Renditions are written once, beside the original, when the image is saved
(`renditions_create`), under predictable names, so building a srcset needs no
storage access or query at request time.
"""

from __future__ import annotations

import hashlib
import posixpath
from io import BytesIO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile

ACCEPTED_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF"}
MAX_UPLOAD_BYTES = 12 * 1024 * 1024
MIN_WIDTH = 320
MAX_SIDE = 8000
RENDITION_WIDTHS = (480, 800, 1200, 1600)
JPEG_OPTIONS = {"quality": 82, "optimize": True, "progressive": True}
# Smaller encodings written beside each JPEG rendition and offered in <picture>, best
# first (Pillow encodes both; AVIF at speed 8 costs about 0.3 s for a 1200-px image).
# (Pillow format, file extension, content type, encoder options)
MODERN_FORMATS = (
    ("AVIF", ".avif", "image/avif", {"quality": 60, "speed": 8}),
    ("WEBP", ".webp", "image/webp", {"quality": 80, "method": 4}),
)


def validate_image_upload(file) -> None:
    """Refuse what is not a JPEG/PNG/WebP/GIF image of sensible size and dimensions.

    A file already in storage (a form saved again without a new upload) was checked
    when it arrived and is left alone: reading it back here would fail on a closed
    file and refuse every later save of the article.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(file, FieldFile) and getattr(file, "_committed", False):
        return
    size = getattr(file, "size", None)
    if size is not None and size > MAX_UPLOAD_BYTES:
        raise ValidationError(
            "This file is %(size)s MB; images may be at most %(max)s MB.",
            code="image_too_large",
            params={"size": round(size / 1024 / 1024, 1), "max": MAX_UPLOAD_BYTES // 1024 // 1024},
        )
    try:
        position = file.tell() if hasattr(file, "tell") else None
        file.seek(0)
        with Image.open(file) as image:
            image_format = image.format
            width, height = image.size
            image.verify()
        if position is not None:
            file.seek(position)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(
            "This is not an image we can read. Upload a JPEG, PNG, WebP or GIF file.",
            code="image_unreadable",
        ) from exc
    if image_format not in ACCEPTED_FORMATS:
        raise ValidationError(
            "%(format)s images are not accepted. Upload a JPEG, PNG, WebP or GIF file.",
            code="image_format",
            params={"format": image_format or "This kind of"},
        )
    if width < MIN_WIDTH:
        raise ValidationError(
            "This image is %(width)s pixels wide; images must be at least %(min)s pixels wide.",
            code="image_too_small",
            params={"width": width, "min": MIN_WIDTH},
        )
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ValidationError(
            "This image is %(width)s×%(height)s pixels; neither side may exceed %(max)s.",
            code="image_too_big",
            params={"width": width, "height": height, "max": MAX_SIDE},
        )


IMAGE_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}


def image_store_once(*, field_file: FieldFile, folder: str) -> bool:
    """Store a new upload under a name made from its content; True when it was new.

    The same picture uploaded twice gets the same name, so the second upload points
    at the first file (and its renditions) instead of leaving another copy of both.
    A file already in storage is left as it is.
    """
    from PIL import Image

    if not field_file or getattr(field_file, "_committed", False):
        return False
    upload = field_file.file
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: upload.read(1024 * 1024), b""):
        digest.update(chunk)
    upload.seek(0)
    with Image.open(upload) as image:
        extension = IMAGE_EXTENSIONS.get(str(image.format), ".img")
    upload.seek(0)
    name = f"{folder}/{digest.hexdigest()[:32]}{extension}"
    created = not default_storage.exists(name)
    if created:
        name = default_storage.save(name, upload)
    # A name, not a file: the field now points at what is stored, and its width and
    # height are read from there.
    setattr(field_file.instance, field_file.field.attname, name)
    return created


def rendition_name(name: str, width: int) -> str:
    stem, _ext = posixpath.splitext(name)
    return f"renditions/{stem}.w{width}.jpg"


def rendition_format_name(name: str, width: int, extension: str) -> str:
    """The rendition's name in another format (`.avif`, `.webp`)."""
    return rendition_name(name, width).removesuffix(".jpg") + extension


def rendition_widths(original_width: int | None) -> list[int]:
    if not original_width:
        return []
    return [w for w in RENDITION_WIDTHS if w < original_width]


def renditions_create(*, field_file: FieldFile) -> list[str]:
    """Write JPEG, AVIF and WebP renditions narrower than the original; existing ones
    are kept, so running it again only fills in what is missing."""
    from PIL import Image

    if not field_file:
        return []
    written = []
    field_file.open("rb")
    try:
        with Image.open(field_file) as original:
            original.load()
            widths = rendition_widths(original.width)
            for width in widths:
                stored = str(field_file.name)
                targets = [(rendition_name(stored, width), "JPEG", JPEG_OPTIONS)] + [
                    (rendition_format_name(stored, width, extension), image_format, options)
                    for image_format, extension, _type, options in MODERN_FORMATS
                ]
                missing = [target for target in targets if not default_storage.exists(target[0])]
                if not missing:
                    continue
                height = round(original.height * width / original.width)
                resized = original.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
                for name, image_format, options in missing:
                    buffer = BytesIO()
                    resized.save(buffer, format=image_format, **options)
                    default_storage.save(name, ContentFile(buffer.getvalue()))
                    written.append(name)
    finally:
        field_file.close()
    return written


def srcset(field_file: FieldFile, original_width: int | None) -> str:
    """`srcset` for an image saved through renditions_create, the original last."""
    if not field_file:
        return ""
    parts = [
        f"{default_storage.url(rendition_name(str(field_file.name), w))} {w}w"
        for w in rendition_widths(original_width)
    ]
    if original_width:
        parts.append(f"{field_file.url} {original_width}w")
    return ", ".join(parts)


def srcset_in_format(field_file: FieldFile, original_width: int | None, extension: str) -> str:
    """`srcset` of an image's renditions in one of MODERN_FORMATS (no original in it)."""
    if not field_file:
        return ""
    return ", ".join(
        f"{default_storage.url(rendition_format_name(str(field_file.name), w, extension))} {w}w"
        for w in rendition_widths(original_width)
    )


def rendition_for_display(
    field_file: FieldFile, original_width: int | None, width: int
) -> tuple[str, str]:
    """(1x, 2x) addresses for showing an image `width` pixels wide where srcset cannot
    be relied on (email): the narrowest JPEG at least that wide, and one at least twice
    as wide ("" when the original is the only choice). The original stands in where
    no rendition is wide enough."""
    if not field_file:
        return "", ""
    widths = rendition_widths(original_width)

    def at_least(pixels: int) -> str:
        wide_enough = [w for w in widths if w >= pixels]
        if wide_enough:
            return default_storage.url(rendition_name(str(field_file.name), min(wide_enough)))
        return field_file.url

    single, double = at_least(width), at_least(2 * width)
    return single, (double if double != single else "")
