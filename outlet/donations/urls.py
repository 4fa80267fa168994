from django.urls import path, re_path, reverse_lazy
from django.views.generic import RedirectView

from . import views, webhooks

app_name = "donations"

urlpatterns = [
    path("", views.donate, name="donate"),
    path("checkout/refresh/", views.checkout_refresh, name="checkout-refresh"),
    path("checkout/intent/", views.checkout_intent, name="checkout-intent"),
    path("return/", views.checkout_return, name="return"),
    path("thanks/<str:token>/", views.thanks, name="thanks"),
    path("supporters/", views.supporters, name="supporters"),
    path("webhook/", webhooks.webhook, name="webhook"),
    # Every /donate/manage/… address (old receipts' /manage/<token>/, sign-in links and
    # pages of the donor session that the reader account replaced) leads to /account/,
    # which asks for a new sign-in link.
    re_path(r"^manage/", RedirectView.as_view(url=reverse_lazy("readers:account"))),
]
