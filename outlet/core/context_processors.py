from django.conf import settings
from django.http import HttpRequest

from outlet.core.language import active_language, open_graph_locale


def site(request: HttpRequest) -> dict[str, object]:
    """What every page shares: the outlet's name, its sections for the navigation, and the
    active language as OpenGraph names it (templates take the code itself from
    {% get_current_language %})."""
    from outlet.articles.selectors import navigation_sections

    return {
        "OUTLET_NAME": settings.OUTLET_NAME,
        "OUTLET_TAGLINE": settings.OUTLET_TAGLINE,
        "OUTLET_POSTAL_ADDRESS": settings.OUTLET_POSTAL_ADDRESS,
        "SITE_URL": settings.SITE_URL,
        "nav_sections": navigation_sections(),
        "DEBUG": settings.DEBUG,
        "OG_LOCALE": open_graph_locale(active_language()),
    }
