"""DKIM on the bulk SMTP path: what is the same for every copy is canonicalised once.

Contract: `SkeletonSigning.signature` returns the DKIM-Signature header line of one
personalised copy, equal to what `DkimSigner.sign` would make of the whole message
(outlet/core/dkim.py), at a fraction of the cost.

Why not one signature per issue: a DKIM signature covers the body's hash and the To,
Message-ID and List-Unsubscribe headers, and every copy's body carries its reader's
unsubscribe link, greeting and tracked links, so no two copies share a valid signature.
What can be shared is everything before the private-key operation that does not depend
on the reader: the skeleton's fixed headers in canonical form, and its fixed body pieces
canonicalised (and the first one hashed) once. Per copy remain the five personal headers,
the few distinct personal values, one SHA-256 over the body and the signature itself.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from dkim import rfc822_parse
from dkim.canonicalization import strip_trailing_lines

from outlet.core.dkim import (
    SIGNED_HEADERS,
    DkimSigner,
    body_hash_of,
    canonical_body_lines,
    canonical_header,
)

if TYPE_CHECKING:
    from outlet.newsletters.sending.skeleton import BodyTemplate


class SkeletonSigning:
    def __init__(self, signer: DkimSigner, *, head: bytes, body: BodyTemplate) -> None:
        self.signer = signer
        headers, _ = rfc822_parse(head + b"\r\n")
        self.canonical = {
            name.lower(): canonical_header(name, value)
            for name, value in headers
            if name.lower() in SIGNED_HEADERS
        }
        self.slots = body.slots
        # The pieces may be canonicalised apart only if the body splits at line ends and
        # the last piece holds the body's last non-empty line (the end-of-body rule).
        splits_at_lines = all(piece.endswith(b"\r\n") for piece in body.fixed[:-1])
        if splits_at_lines and body.fixed[-1].strip(b"\r\n"):
            fixed = [canonical_body_lines(piece) for piece in body.fixed]
            fixed[-1] = strip_trailing_lines(fixed[-1])
            self.fixed: list[bytes] | None = fixed[1:]
            self.prefix = hashlib.sha256(fixed[0])
        else:
            self.fixed = None

    def body_hash(self, encoded: dict[tuple[str, bool], bytes], pieces: list[bytes]) -> bytes:
        if self.fixed is None:
            return body_hash_of(b"".join(pieces))
        canonical = {slot: canonical_body_lines(value) for slot, value in encoded.items()}
        parts = []
        for slot, piece in zip(self.slots, self.fixed, strict=True):
            parts.append(canonical[slot])
            parts.append(piece)
        digest = self.prefix.copy()
        digest.update(b"".join(parts))
        return base64.b64encode(digest.digest())

    def signature(
        self,
        *,
        personal: list[tuple[bytes, bytes]],
        encoded: dict[tuple[str, bool], bytes],
        pieces: list[bytes],
    ) -> bytes:
        """`personal`: the copy's own header fields as (name, value), in order."""
        canonical = dict(self.canonical)
        for name, value in personal:
            if (lowered := name.lower()) in SIGNED_HEADERS:
                canonical[lowered] = canonical_header(name, b" " + value)
        return self.signer.signature(canonical, self.body_hash(encoded, pieces))
