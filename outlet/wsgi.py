import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outlet.settings")

django_application = get_wsgi_application()

# Cached public pages are answered before Django builds a request (articles/caching.py).
from outlet.articles.caching import PageCacheWSGI  # noqa: E402 (needs settings loaded)

# Outermost: every answer, however early, has a request id on its lines and its headers.
from outlet.core.logs.request_id import RequestIdWSGI  # noqa: E402

# Tracked links and the opens pixel are answered before anything else (newsletters/measuring).
from outlet.newsletters.measuring.wsgi import TrackingWSGI  # noqa: E402

application = RequestIdWSGI(TrackingWSGI(PageCacheWSGI(django_application)))
