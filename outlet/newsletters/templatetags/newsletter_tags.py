from django import template
from django.utils import translation

from outlet.articles.caching import content_cached
from outlet.core.language import is_multilingual
from outlet.newsletters.forms import CONSENT_TEXT
from outlet.newsletters.selectors import newsletter_choices_public, newsletters_language_first

register = template.Library()


@register.simple_tag
def newsletter_signup_choices():
    """The public newsletters a sign-up box offers, and the consent text it shows.

    Kept with the site's content version (saving a newsletter starts a new one), so the
    box on every article page costs no query.
    """
    newsletters = content_cached(
        "newsletters:signup-choices", lambda: list(newsletter_choices_public())
    )
    if is_multilingual():
        # The page's language first (and so checked first); its order is kept in each part.
        newsletters = newsletters_language_first(newsletters, language=translation.get_language())
    return {"newsletters": newsletters, "consent_text": CONSENT_TEXT}
