"""Whether and how outlet DKIM-signs: the settings' check and the process's signer.

Contract: `dkim_signer()` is the process's signer when DKIM_SELECTOR, DKIM_DOMAIN and a
private key are configured and mail goes out through outlet's SMTP backend (never through
an ESP, which signs itself), else None. `dkim_key_read` is what outlet/settings/ calls: a
configured selector without a readable, usable key stops startup, with a message that
never contains the key. The signing itself (dkim.py, and its libraries) is imported only
when DKIM is configured.

DMARC passes on DKIM only when the signing domain is aligned with the From address
(RFC 7489 3.1.1, relaxed mode: the same organisational domain, per the Public Suffix
List). `dkim_alignment_check` stops startup when DEFAULT_FROM_EMAIL or SERVER_EMAIL is not
aligned with DKIM_DOMAIN; `dkim_alignment_problem` says why one address is not (the
newsletter form refuses a From address that would fail DMARC).
"""

from __future__ import annotations

import functools
import re
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from outlet.core.dkim import DkimSigner

DNS_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")


def dkim_key_read(*, selector: str, domain: str, pem: str, path: str) -> str:
    """The configured private key as PEM text ("" when DKIM is off), or
    ImproperlyConfigured naming the setting at fault (and never quoting the key)."""
    if not (selector or domain or pem or path):
        return ""
    if not selector or not domain:
        raise ImproperlyConfigured(
            "DKIM needs DKIM_SELECTOR and DKIM_DOMAIN together with its private key "
            "(DKIM_PRIVATE_KEY or DKIM_PRIVATE_KEY_FILE); set all, or none to send unsigned."
        )
    for name, value in (("DKIM_SELECTOR", selector), ("DKIM_DOMAIN", domain)):
        if not DNS_NAME.fullmatch(value):
            raise ImproperlyConfigured(f"{name} must be a DNS name (letters, digits, . - _).")
    if pem and path:
        raise ImproperlyConfigured("Set DKIM_PRIVATE_KEY or DKIM_PRIVATE_KEY_FILE, not both.")
    source = "DKIM_PRIVATE_KEY"
    if path:
        source = f"DKIM_PRIVATE_KEY_FILE ({path})"
        try:
            pem = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a PEM text file"
            raise ImproperlyConfigured(f"{source} cannot be read: {reason}") from None
    if not pem.strip():
        raise ImproperlyConfigured(
            "DKIM_SELECTOR is set but no private key was given: set DKIM_PRIVATE_KEY "
            "(PEM) or DKIM_PRIVATE_KEY_FILE; `manage.py dkim_keygen` makes one."
        )
    pem = pem.replace("\\n", "\n")  # a PEM squeezed onto one line of an env file
    from outlet.core.dkim import DkimKey

    try:
        DkimKey.from_pem(pem, selector=selector, domain=domain)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{source} {exc}.") from None
    return pem


_signers: dict[tuple[str, str, str], DkimSigner] = {}


def signing_backend(email_backend: str) -> bool:
    """Whether mail sent through `email_backend` is signed by outlet (its SMTP backend);
    an ESP signs for itself."""
    from django.utils.module_loading import import_string

    from outlet.core.smtp_backend import EmailBackend

    try:
        backend = import_string(email_backend)
    except ImportError:
        return False
    return isinstance(backend, type) and issubclass(backend, EmailBackend)


def dkim_signer() -> DkimSigner | None:
    """The process's signer for the configured key, or None when DKIM is off or mail
    goes through an ESP (anything but outlet's SMTP backend)."""
    from django.conf import settings

    pem = getattr(settings, "DKIM_PRIVATE_KEY", "")
    if not pem or not signing_backend(settings.EMAIL_BACKEND):
        return None
    cache_key = (settings.DKIM_SELECTOR, settings.DKIM_DOMAIN, pem)
    signer = _signers.get(cache_key)
    if signer is None:
        from outlet.core.dkim import DkimKey, DkimSigner

        _signers.clear()
        signer = _signers[cache_key] = DkimSigner(
            DkimKey.from_pem(pem, selector=settings.DKIM_SELECTOR, domain=settings.DKIM_DOMAIN)
        )
    return signer


@functools.cache
def _public_suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()  # the list packaged with it: no network


def organisational_domain(domain: str) -> str:
    """The registered domain under its public suffix (RFC 7489 3.2): news.example.co.uk
    -> example.co.uk. A public suffix alone is its own (nobody's) organisation."""
    domain = domain.strip().rstrip(".").lower()
    return _public_suffixes().privatesuffix(domain) or domain


def _aligned(dkim_domain: str, from_email: str) -> str | None:
    address = parseaddr(from_email)[1]
    from_domain = address.rpartition("@")[2].lower()
    if not from_domain:
        return f"{from_email!r} has no domain"
    if organisational_domain(from_domain) != organisational_domain(dkim_domain):
        return (
            f"DKIM_DOMAIN {dkim_domain} is not aligned with {from_domain}: receivers "
            "checking DMARC would fail the signature (relaxed alignment needs the same "
            "organisational domain)"
        )
    return None


def dkim_alignment_problem(*, from_email: str) -> str | None:
    """Why mail from `from_email`, signed as configured, would fail DMARC; None if it
    would not (or nothing is signed)."""
    from django.conf import settings

    if not getattr(settings, "DKIM_PRIVATE_KEY", "") or not settings.DKIM_DOMAIN:
        return None
    if not signing_backend(settings.EMAIL_BACKEND):
        return None  # an ESP signs, for the From domain it was set up with
    return _aligned(settings.DKIM_DOMAIN, from_email)


def dkim_alignment_check(*, dkim_domain: str, senders: dict[str, str]) -> None:
    """What outlet/settings/ calls once a key is configured: ImproperlyConfigured naming
    the first sender setting not aligned with DKIM_DOMAIN."""
    for name, from_email in senders.items():
        problem = _aligned(dkim_domain, from_email)
        if problem:
            raise ImproperlyConfigured(f"{problem}; set {name} in that domain, or DKIM_DOMAIN.")
