from django import template

from outlet.newsletters.forms import CONSENT_TEXT
from outlet.newsletters.selectors import newsletter_choices_public

register = template.Library()


@register.simple_tag
def newsletter_signup_choices():
    """The public newsletters a sign-up box offers, and the consent text it shows."""
    return {"newsletters": list(newsletter_choices_public()), "consent_text": CONSENT_TEXT}
