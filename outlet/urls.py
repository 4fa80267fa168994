import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import TemplateView
from django.views.i18n import JavaScriptCatalog

from outlet.articles.caching import public_page
from outlet.core import views as core_views
from outlet.newsletters import esp_webhooks

admin.site.site_header = f"{settings.OUTLET_NAME} editors"
admin.site.site_title = f"{settings.OUTLET_NAME} admin"

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("csrf/", core_views.csrf_token, name="csrf-token"),
    path(
        "robots.txt",
        TemplateView.as_view(template_name="robots.txt", content_type="text/plain"),
        name="robots",
    ),
    # Django's JavaScript catalog (gettext() etc. for scripts) in the site's language: a
    # public page like any other, so the page cache and a shared cache hold it (ETag,
    # s-maxage) and a deploy's new strings arrive with the next content version.
    path(
        "jsi18n/",
        public_page(JavaScriptCatalog.as_view(), "site"),
        name="javascript-catalog",
    ),
    path("admin/", admin.site.urls),
    path("_outbox/", core_views.outbox_list, name="outbox"),
    path("_outbox/<str:key>/", core_views.outbox_detail, name="outbox-detail"),
    path("_outbox/<str:key>/html", core_views.outbox_html, name="outbox-html"),
    path("donate/", include("outlet.donations.urls")),
    path("newsletter/", include("outlet.newsletters.urls")),
    path("account/", include("outlet.readers.urls")),
    # Tracked links and the opens pixel of sent issues (newsletters/measuring/).
    path("n/", include("outlet.newsletters.measuring.urls")),
    # Only the configured email provider's webhooks (newsletters/esp_webhooks.py).
    path("anymail/<path:path>", esp_webhooks.esp_webhook, name="esp-webhook"),
    path("page/", include("outlet.pages.urls")),
    path("", include("outlet.articles.urls")),
]

# Uploads are served by the site itself (with a year-long lifetime) unless MEDIA_URL
# points elsewhere, e.g. at a CDN or a web server in front of MEDIA_ROOT.
if settings.MEDIA_URL.startswith("/"):
    urlpatterns.insert(
        0,
        re_path(
            rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.+)$",
            core_views.media,
            name="media",
        ),
    )
