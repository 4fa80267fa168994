"""Streaming encryption of backup parts: a dump of many gigabytes is encrypted and decrypted
in 64 KiB chunks, never held in memory.

The construction is age's STREAM (and Tink's streaming AEAD): a random 16-byte salt per
file, a file key derived from BACKUP_ENCRYPTION_KEY with HKDF-SHA256, then each chunk
sealed with ChaCha20-Poly1305 under the nonce (chunk counter, 11 bytes big-endian || 1 if
it is the last chunk else 0). A changed, dropped, reordered or cut-off chunk fails to
open, and so does a file whose end is missing (its last chunk must carry the flag).
Fernet, the other choice, seals a whole message at once and base64-encodes it (a third
larger), so it cannot stream.

BACKUP_ENCRYPTION_KEY is 32 random bytes in URL-safe base64, the same shape as a Fernet
key: `python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"outlet-backup-enc-v1\n"
SALT_BYTES = 16
CHUNK = 64 * 1024
TAG = 16


class BackupError(Exception):
    """A backup cannot be made, read or trusted; the message says why, fit for a person."""


def key_parse(raw: str) -> bytes:
    """BACKUP_ENCRYPTION_KEY's 32 bytes; BackupError naming the variable (never echoing it)."""
    try:
        key = base64.urlsafe_b64decode(raw.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        key = b""
    if len(key) != 32:
        raise BackupError(
            "BACKUP_ENCRYPTION_KEY must be 32 random bytes in URL-safe base64 (44 characters), "
            'e.g. from: python -c "import base64, os; '
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
        )
    return key


def manifest_key(key: bytes) -> bytes:
    """The key that seals a backup's manifest (its own, derived: never the file keys)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"outlet-backup manifest"
    ).derive(key)


def _file_cipher(key: bytes, salt: bytes) -> ChaCha20Poly1305:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"outlet-backup").derive(
        key
    )
    return ChaCha20Poly1305(derived)


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class PartWriter(io.RawIOBase):
    """A write-only file for one backup part: bytes written are encrypted (when a key is
    given) and stored in `target`, and the stored bytes' sha256 and size are kept for the
    manifest. `close()` seals the last chunk; it does not close `target`."""

    def __init__(self, target: BinaryIO, key: bytes | None) -> None:
        super().__init__()
        self._target = target
        self._sha256 = hashlib.sha256()
        self.size = 0
        self.plain_size = 0
        self._cipher: ChaCha20Poly1305 | None = None
        self._buffer = bytearray()
        self._counter = 0
        if key is not None:
            salt = os.urandom(SALT_BYTES)
            self._cipher = _file_cipher(key, salt)
            self._store(MAGIC + salt)

    def writable(self) -> bool:
        return True

    def _store(self, data: bytes) -> None:
        self._target.write(data)
        self._sha256.update(data)
        self.size += len(data)

    def write(self, data) -> int:  # type: ignore[override]
        data = bytes(data)
        self.plain_size += len(data)
        if self._cipher is None:
            self._store(data)
            return len(data)
        self._buffer += data
        # Keep at least one byte back: the last chunk is only known at close().
        while len(self._buffer) > CHUNK:
            self._seal(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        assert self._cipher is not None
        self._store(self._cipher.encrypt(_nonce(self._counter, last), chunk, None))
        self._counter += 1

    def close(self) -> None:
        if not self.closed and self._cipher is not None:
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()
        super().close()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


def part_chunks(source: BinaryIO, key: bytes | None) -> Iterator[bytes]:
    """The plain bytes of a stored part, chunk by chunk: decrypted and checked when `key`
    is given (BackupError on a wrong key, tampering or a cut-off file), as stored if not."""
    head = source.read(len(MAGIC))
    encrypted = head == MAGIC
    if not encrypted:
        if key is not None and head:
            # A plain part when the manifest says encrypted: refuse rather than trust it.
            raise BackupError("A backup part is not encrypted although its manifest says so.")
        yield head
        while chunk := source.read(1024 * 1024):
            yield chunk
        return
    if key is None:
        raise BackupError(
            "This backup is encrypted: set BACKUP_ENCRYPTION_KEY to the key it was made with."
        )
    cipher = _file_cipher(key, source.read(SALT_BYTES))
    counter = 0
    block = source.read(CHUNK + TAG)
    while True:
        following = source.read(CHUNK + TAG)
        last = not following
        try:
            yield cipher.decrypt(_nonce(counter, last), block, None)
        except InvalidTag:
            raise BackupError(
                "A backup part does not decrypt: a wrong BACKUP_ENCRYPTION_KEY, or the file "
                "was changed or cut short."
            ) from None
        if last:
            return
        counter += 1
        block = following


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of chunks (for tarfile's streaming mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def file_sha256(path: os.PathLike[str] | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
