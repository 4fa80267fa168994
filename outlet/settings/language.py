"""The language readers get (issue 24): one per site, or several on a bilingual site.

SITE_LANGUAGE is the language of every reader page and email; SITE_LANGUAGES (first is
the default) publishes in several, the others under a prefix (/en/...). Codes are
Django's (es, pt-br, fr, en); a code Django has no translations for stops startup.
"""

from django.conf.locale import LANG_INFO
from django.core.exceptions import ImproperlyConfigured

from outlet.settings.environment import BASE_DIR, env, read

SITE_LANGUAGE: str = env.str("SITE_LANGUAGE", default="en").strip().lower().replace("_", "-")
SITE_LANGUAGES: list[str] = [
    code.strip().lower().replace("_", "-")
    for code in read(env.list, "SITE_LANGUAGES", default=[SITE_LANGUAGE])
    if code.strip()
] or [SITE_LANGUAGE]
_both = "SITE_LANGUAGES" in env.ENVIRON and "SITE_LANGUAGE" in env.ENVIRON
if _both and SITE_LANGUAGES[0] != SITE_LANGUAGE:
    raise ImproperlyConfigured(
        "SITE_LANGUAGE and SITE_LANGUAGES disagree: the first of SITE_LANGUAGES is the "
        "site's default language; set one of them."
    )
SITE_LANGUAGE = SITE_LANGUAGES[0]
for _code in SITE_LANGUAGES:
    if _code not in LANG_INFO:
        raise ImproperlyConfigured(
            f"{_code!r} in SITE_LANGUAGE(S) is not a language code Django knows "
            "(use e.g. en, es, pt-br, fr)."
        )
if len(set(SITE_LANGUAGES)) != len(SITE_LANGUAGES):
    raise ImproperlyConfigured("SITE_LANGUAGES names a language twice.")

LANGUAGE_CODE = SITE_LANGUAGE
LANGUAGES = [(code, LANG_INFO[code]["name_local"]) for code in SITE_LANGUAGES]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE: str = env.str("OUTLET_TIME_ZONE", default="America/New_York")
USE_I18N = True
USE_TZ = True
# Project formats override Django's per language (outlet/formats/<ll>/formats.py).
FORMAT_MODULE_PATH = ["outlet.formats"]
