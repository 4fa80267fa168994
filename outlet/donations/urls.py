from django.urls import path, reverse_lazy
from django.views.generic import RedirectView

from . import views, webhooks

app_name = "donations"

urlpatterns = [
    path("", views.donate, name="donate"),
    path("checkout/start/", views.checkout_start, name="checkout-start"),
    path("checkout/charge/", views.checkout_charge, name="checkout-charge"),
    path("checkout/refresh/", views.checkout_refresh, name="checkout-refresh"),
    path("thanks/<str:token>/", views.thanks, name="thanks"),
    path("supporters/", views.supporters, name="supporters"),
    path("manage/", views.manage_request, name="manage-request"),
    path("manage/sign-in/<str:token>/", views.sign_in, name="sign-in"),
    path("manage/gifts/", views.manage, name="manage"),
    path("manage/gifts/<int:gift_id>/cancel/", views.manage_cancel, name="manage-cancel"),
    path("manage/gifts/<int:gift_id>/amount/", views.manage_amount, name="manage-amount"),
    path("manage/gifts/<int:gift_id>/card/", views.manage_card_start, name="manage-card"),
    path(
        "manage/gifts/<int:gift_id>/card/confirm/",
        views.manage_card_confirm,
        name="manage-card-confirm",
    ),
    path("webhook/", webhooks.webhook, name="webhook"),
    # Receipts sent before sign-in links carried /manage/<token>/: they lead to the form.
    path(
        "manage/<str:token>/",
        RedirectView.as_view(url=reverse_lazy("donations:manage-request")),
    ),
]
