"""Where a WordPress image's file sits under the uploads folder (--media-dir).

The images themselves are stored by the shared library (`importers/media.py`);
WordPress only says where to find each file: the attachment's own
`_wp_attached_file`, else the part of its address after /uploads/.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .markup import Attachment

_SIZED_COPY = re.compile(r"-\d+x\d+(?=\.\w+$)")


def original_url(url: str) -> str:
    """An uploads address without scheme or size suffix: …/photo-800x600.jpg → photo.jpg."""
    path = urlsplit(url).path
    return _SIZED_COPY.sub("", path.partition("/uploads/")[2] or path)


def uploads_relative_path(url: str) -> str:
    """The part of an address after /uploads/, without a resized copy's size suffix."""
    return _SIZED_COPY.sub("", urlsplit(url).path.partition("/uploads/")[2])


def attachment_relative_path(attachment: Attachment) -> str:
    """Where the file sits under the uploads folder: 2019/05/photo.jpg."""
    return attachment.relative_path or attachment.url.partition("/uploads/")[2]
