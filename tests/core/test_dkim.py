"""DKIM settings refuse what cannot sign, without quoting the key; `dkim_keygen` makes a
key file only its owner reads and a DNS record resolvers accept; the shortcuts around
dkimpy's canonicalisation give dkimpy's results."""

from __future__ import annotations

import re
import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from dkim.canonicalization import Relaxed

from outlet.core.dkim import canonical_body_lines, canonical_header
from tests.core.test_settings import PRODUCTION_ENV, _manage


def keygen(tmp_path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(
        "dkim_keygen", "--selector=s1", "--domain=news.example.org", *args, stdout=out, stderr=err
    )
    return out.getvalue(), err.getvalue()


def test_selector_without_a_readable_key_stops_production_startup(tmp_path):
    missing = tmp_path / "absent.pem"
    env = {**PRODUCTION_ENV, "DKIM_SELECTOR": "s1", "DKIM_DOMAIN": "news.example.org"}

    without_key = _manage("check", **env)
    unreadable = _manage("check", **env, DKIM_PRIVATE_KEY_FILE=str(missing))

    assert without_key.returncode != 0
    assert "DKIM_PRIVATE_KEY" in without_key.stderr
    assert unreadable.returncode != 0
    assert f"DKIM_PRIVATE_KEY_FILE ({missing}) cannot be read" in unreadable.stderr


def test_a_key_that_cannot_sign_is_refused_without_being_quoted():
    secret = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7SECRETSECRET"
    pem = f"-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"
    env = {**PRODUCTION_ENV, "DKIM_SELECTOR": "s1", "DKIM_DOMAIN": "news.example.org"}

    result = _manage("check", **env, DKIM_PRIVATE_KEY=pem)

    assert result.returncode != 0
    assert "DKIM_PRIVATE_KEY is not an unencrypted PEM private key" in result.stderr
    assert "SECRETSECRET" not in result.stderr + result.stdout


def test_production_starts_with_a_key_from_dkim_keygen(tmp_path):
    key_file = tmp_path / "s1.pem"
    keygen(tmp_path, f"--output={key_file}")
    env = {**PRODUCTION_ENV, "DKIM_SELECTOR": "s1", "DKIM_DOMAIN": "news.example.org",
           "DEFAULT_FROM_EMAIL": "News <hello@example.org>"}  # fmt: skip

    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", **env, DKIM_PRIVATE_KEY_FILE=str(key_file)
    )

    assert result.returncode == 0, result.stderr


def test_keygen_writes_a_key_only_its_owner_reads_and_prints_the_record(tmp_path):
    key_file = tmp_path / "s1.pem"

    record, notes = keygen(tmp_path, f"--output={key_file}", "--bits=4096")

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    name, strings = record.strip().split(" IN TXT ")
    assert name == "s1._domainkey.news.example.org"
    parts = re.findall(r'"([^"]*)"', strings)
    assert len(parts) > 2 and all(len(part) <= 255 for part in parts)
    assert "".join(parts).startswith("v=DKIM1; k=rsa; p=MII")
    assert "PRIVATE" not in record
    assert f"DKIM_PRIVATE_KEY_FILE={key_file}" in notes


def test_keygen_ed25519_record_names_its_key_type(tmp_path):
    record, _ = keygen(tmp_path, f"--output={tmp_path / 'ed.pem'}", "--ed25519")

    assert re.search(r'"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="$', record.strip())


def test_keygen_never_overwrites_a_key(tmp_path):
    key_file = tmp_path / "s1.pem"
    keygen(tmp_path, f"--output={key_file}")
    before = key_file.read_bytes()

    with pytest.raises(CommandError, match="must not be overwritten"):
        keygen(tmp_path, f"--output={key_file}")

    assert key_file.read_bytes() == before


@pytest.mark.parametrize(
    "value",
    [
        b" <https://example.org/u/abc>, <mailto:u@example.org?subject=x>",
        b" plain",
        b"  two leading",
        b" inner  run",
        b" tab\there",
        b" folded\r\n\tline",
        b" trailing  ",
    ],
)
def test_header_shortcut_gives_dkimpys_relaxed_form(value):
    ((name, expected),) = Relaxed.canonicalize_headers([(b"List-Unsubscribe", value)])

    assert canonical_header(b"List-Unsubscribe", value) == name + b":" + expected


@pytest.mark.parametrize(
    "lines",
    [b"Hi Ana,=\r\n", b"https://x.test/n/c/abc.123=\r\n", b"a  b\r\n", b"tab\tx \r\n", b"x \r\n"],
)
def test_body_line_shortcut_gives_dkimpys_relaxed_form(lines):
    from dkim.canonicalization import compress_whitespace, strip_trailing_whitespace

    assert canonical_body_lines(lines) == compress_whitespace(strip_trailing_whitespace(lines))


# --- DMARC alignment (RFC 7489 3.1.1, relaxed: the organisational domains match) ---------


def _aligned_env(tmp_path, **extra: str) -> dict[str, str]:
    key_file = tmp_path / "s1.pem"
    keygen(tmp_path, f"--output={key_file}")
    return {
        **PRODUCTION_ENV,
        "DKIM_SELECTOR": "s1",
        "DKIM_PRIVATE_KEY_FILE": str(key_file),
        **extra,
    }


def test_a_signing_domain_not_aligned_with_the_sender_stops_startup(tmp_path):
    env = _aligned_env(
        tmp_path, DKIM_DOMAIN="news.example.org", DEFAULT_FROM_EMAIL="News <hi@elsewhere.test>"
    )

    result = _manage("check", **env)

    assert result.returncode != 0
    assert "DKIM_DOMAIN news.example.org is not aligned" in result.stderr
    assert "DEFAULT_FROM_EMAIL" in result.stderr


def test_a_signing_subdomain_of_the_senders_organisation_is_aligned(tmp_path):
    env = _aligned_env(
        tmp_path, DKIM_DOMAIN="mail.example.co.uk", DEFAULT_FROM_EMAIL="News <hi@example.co.uk>"
    )

    assert _manage("check", **env).returncode == 0


def test_a_public_suffix_alone_is_no_organisation(settings):
    from outlet.core.dkim_config import dkim_alignment_problem

    settings.DKIM_PRIVATE_KEY, settings.DKIM_DOMAIN = "pem", "example.co.uk"
    settings.EMAIL_BACKEND = "outlet.core.smtp_backend.EmailBackend"
    assert dkim_alignment_problem(from_email="a@other.co.uk") is not None
    assert dkim_alignment_problem(from_email="a@news.example.co.uk") is None
    settings.DKIM_PRIVATE_KEY = ""
    assert dkim_alignment_problem(from_email="a@other.co.uk") is None  # not signing


@pytest.mark.django_db
def test_a_newsletter_from_outside_the_signing_domain_is_refused(settings):
    from django.core.exceptions import ValidationError

    from tests.factories import NewsletterFactory

    settings.DKIM_PRIVATE_KEY, settings.DKIM_DOMAIN = "pem", "outlet.test"
    settings.EMAIL_BACKEND = "outlet.core.smtp_backend.EmailBackend"
    newsletter = NewsletterFactory.build(from_email="news@elsewhere.example")

    with pytest.raises(ValidationError) as refused:
        newsletter.full_clean()

    assert "from_email" in refused.value.message_dict
    newsletter.from_email = "news@lists.outlet.test"
    newsletter.full_clean(exclude=["slug"])


@pytest.mark.django_db
def test_through_an_email_provider_nothing_is_signed_so_no_from_is_refused(settings):
    """DKIM_* left set after moving to an ESP: outlet signs nothing (the provider signs
    for the From domain), so a newsletter From on another domain must not be refused."""
    from tests.factories import NewsletterFactory

    settings.DKIM_PRIVATE_KEY, settings.DKIM_DOMAIN = "pem", "outlet.test"
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    newsletter = NewsletterFactory.build(from_email="news@partner.example")

    newsletter.full_clean(exclude=["slug"])


def test_through_an_email_provider_startup_does_not_refuse_the_sender(tmp_path):
    env = _aligned_env(
        tmp_path,
        DKIM_DOMAIN="news.example.org",
        DEFAULT_FROM_EMAIL="News <hi@elsewhere.test>",
        EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
        ANYMAIL_POSTMARK_SERVER_TOKEN="x",
        ANYMAIL_WEBHOOK_SECRET="user:secret",
    )

    result = _manage("check", **env)

    assert result.returncode == 0, result.stderr[-500:]
