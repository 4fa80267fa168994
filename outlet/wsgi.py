import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outlet.settings")

django_application = get_wsgi_application()

# Cached public pages are answered before Django builds a request (articles/caching.py).
from outlet.articles.caching import PageCacheWSGI  # noqa: E402 (needs settings loaded)

# Tracked links and the opens pixel are answered before anything else (newsletters/measuring).
from outlet.newsletters.measuring.wsgi import TrackingWSGI  # noqa: E402

application = TrackingWSGI(PageCacheWSGI(django_application))
