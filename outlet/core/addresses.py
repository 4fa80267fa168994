"""Email addresses as every app stores and compares them."""

import hashlib


def email_normalise(email: str) -> str:
    """The one stored form of an address: stripped, lower case."""
    return (email or "").strip().lower()


def email_digest(email: str) -> str:
    """SHA-256 hex of the normalised address: what suppressions, cache keys and logs carry."""
    return hashlib.sha256(email_normalise(email).encode("utf-8")).hexdigest()
