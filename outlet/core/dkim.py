"""DKIM signing (RFC 6376, relaxed/relaxed) of the mail outlet sends through its own SMTP relay.

Contract: `DkimSigner.sign(message)` returns the message with a DKIM-Signature header in
front; `DkimSigner.signature(...)` builds that header from canonical header lines and a body
hash, so the newsletter's skeleton (sending/signing.py) can canonicalise its fixed parts
once per issue and only the personal ones per message.

The parsing and canonicalisation are dkimpy's; the private-key operation is OpenSSL's
(`cryptography`) for RSA and libsodium's (PyNaCl) for Ed25519, because dkimpy's own
pure-Python RSA costs milliseconds a message and the bulk path has a fraction of one.
Every signature is checked in the tests by dkimpy's own verifier against the published
DNS record.

Imported only when DKIM is configured (dkim_config.py decides): its libraries cost every
process some 17 MB.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import nacl.signing
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim import rfc822_parse
from dkim.canonicalization import Relaxed, compress_whitespace, strip_trailing_whitespace

from outlet.core.dkim_config import DNS_NAME

#: Signed when present, in this order. RFC 8058 requires List-Unsubscribe and
#: List-Unsubscribe-Post to be covered for one-click unsubscribe to be honoured.
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-id",
    b"reply-to",
)
#: Named once more than present ("oversigned"): a second From added in transit breaks
#: the signature instead of being shown to the reader.
OVERSIGNED = (b"from",)

MIN_RSA_BITS = 1024
RSA_ALGORITHM = b"rsa-sha256"
ED25519_ALGORITHM = b"ed25519-sha256"  # RFC 8463


def canonical_header(name: bytes, value: bytes) -> bytes:
    """One header field in relaxed canonical form (RFC 6376 3.4.2), CRLF included."""
    if b"\n" in value or b"\r" in value or b"\t" in value or b"  " in value:
        ((cname, cvalue),) = Relaxed.canonicalize_headers([(name, value)])
        return cname + b":" + cvalue
    # Unfolded, no runs of white space: what the regular expressions would make of it
    # (the usual case, and the bulk path's five personal headers per message).
    return name.lower().rstrip() + b":" + value.strip(b" ") + b"\r\n"


def canonical_body_lines(content: bytes) -> bytes:
    """Relaxed body canonicalisation of whole lines (RFC 6376 3.4.4) without the
    end-of-body rule: applied to pieces that split the body at line ends, the pieces'
    results joined are the body's (the trailing empty lines are the caller's)."""
    if b"\t" not in content and b"  " not in content and b" \r\n" not in content:
        return content  # nothing to reduce: the usual personal value
    return compress_whitespace(strip_trailing_whitespace(content))


def body_hash_of(body: bytes) -> bytes:
    """bh= of a whole body: relaxed canonical form, SHA-256, base64."""
    return base64.b64encode(hashlib.sha256(Relaxed.canonicalize_body(body)).digest())


@dataclass(frozen=True)
class DkimKey:
    """A parsed private key and where its public half is published."""

    selector: str
    domain: str
    private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    @property
    def algorithm(self) -> bytes:
        return (
            RSA_ALGORITHM if isinstance(self.private_key, rsa.RSAPrivateKey) else ED25519_ALGORITHM
        )

    @classmethod
    def from_pem(cls, pem: str, *, selector: str, domain: str) -> DkimKey:
        """Raises ValueError with a message safe to show (never the key itself)."""
        try:
            key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
            raise ValueError(
                "is not an unencrypted PEM private key (RSA or Ed25519)"
            ) from None  # the parser's message may quote the key
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise ValueError(
                    f"is an RSA key of {key.key_size} bits; DKIM needs at least "
                    f"{MIN_RSA_BITS} (2048 recommended)"
                )
        elif not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError("is neither an RSA nor an Ed25519 key")
        return cls(selector=selector, domain=domain, private_key=key)

    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_value(self) -> str:
        """The TXT record's content: v=DKIM1; k=…; p=… (RFC 6376 3.6.1, RFC 8463)."""
        public = self.private_key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"

    def dns_record(self) -> str:
        """The zone-file line, its text split into strings of at most 255 characters
        (one TXT string's limit; resolvers join them)."""
        value = self.dns_value()
        strings = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
        return f"{self.dns_name()} IN TXT {strings}"


class DkimSigner:
    """Signs with one key; holds the parsed key so a message costs one private-key operation."""

    def __init__(self, key: DkimKey) -> None:
        self.key = key
        self._ed25519: nacl.signing.SigningKey | None = None
        if isinstance(key.private_key, ed25519.Ed25519PrivateKey):
            # libsodium signs in about half the time OpenSSL takes, through cryptography.
            self._ed25519 = nacl.signing.SigningKey(
                key.private_key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            )
        self._fixed_tags = (
            f"v=1; a={key.algorithm.decode()}; c=relaxed/relaxed; "
            f"d={key.domain}; s={key.selector}; t="
        ).encode("ascii")

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header in front (any message: the
        transactional path; it parses and canonicalises the whole message)."""
        headers, body = rfc822_parse(message)
        canonical = {}
        for name, value in headers:  # the last of a repeated field is the one signed
            if (lowered := name.lower()) in SIGNED_HEADERS:
                canonical[lowered] = canonical_header(name, value)
        return self.signature(canonical, body_hash_of(body)) + message

    def signature(self, canonical: dict[bytes, bytes], body_hash: bytes) -> bytes:
        """The DKIM-Signature header line (CRLF-terminated) for a message whose signed
        fields, in relaxed canonical form, are `canonical` (by lower-case name)."""
        names = [name for name in SIGNED_HEADERS if name in canonical]
        listed = b":".join(names + [name for name in OVERSIGNED if name in canonical])
        unsigned = (
            b"DKIM-Signature: "
            + self._fixed_tags
            + str(int(time.time())).encode("ascii")
            + b";\r\n\th="
            + listed
            + b";\r\n\tbh="
            + body_hash
            + b";\r\n\tb="
        )
        # The signature field itself, canonical and without its trailing CRLF: its folds
        # (CRLF TAB) become single spaces; selector and domain hold no white space.
        own = b"dkim-signature:" + unsigned[16:].replace(b"\r\n\t", b" ")
        digest = hashlib.sha256(b"".join([canonical[name] for name in names] + [own]))
        signature = base64.b64encode(self._private_operation(digest.digest()))
        folded = b"\r\n\t".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return unsigned + folded + b"\r\n"

    def _private_operation(self, digest: bytes) -> bytes:
        if self._ed25519 is not None:
            # RFC 8463: Ed25519 over the SHA-256 of the header data, not over the data.
            return self._ed25519.sign(digest).signature
        key = cast(rsa.RSAPrivateKey, self.key.private_key)
        return key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


# --- Keys ---------------------------------------------------------------------------------


def dkim_key_generate(
    *, selector: str, domain: str, path: Path, bits: int = 2048, ed25519_key: bool = False
) -> DkimKey:
    """A new private key written to `path` (created, never overwritten, mode 0600).
    Raises ValueError for a selector or domain that is no DNS name."""
    for label, value in (("selector", selector), ("domain", domain)):
        if not DNS_NAME.fullmatch(value):
            raise ValueError(f"The {label} must be a DNS name (letters, digits, . - _).")
    private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if ed25519_key:
        private_key = ed25519.Ed25519PrivateKey.generate()
    else:
        if bits < 2048:
            raise ValueError("An RSA key for DKIM should have at least 2048 bits.")
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return DkimKey(selector=selector, domain=domain, private_key=private_key)
