"""What every part of the settings reads first: where the project and its data live,
DEBUG, and one reader that names a malformed variable."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(environ.Env().str("OUTLET_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()


def read(reader, name: str, **kwargs):
    """Read one variable; a malformed value stops startup and names it."""
    try:
        return reader(name, **kwargs)
    except (ValueError, ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"Environment variable {name} is malformed: {exc}") from exc


DEBUG: bool = read(env.bool, "DEBUG", default=False)
