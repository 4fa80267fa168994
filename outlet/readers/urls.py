from django.urls import path

from . import gift_views, views

app_name = "readers"

urlpatterns = [
    path("", views.account, name="account"),
    path("sign-in/<str:token>/", views.sign_in, name="sign-in"),
    path("sign-out/", views.sign_out, name="sign-out"),
    path("sign-out/everywhere/", views.sign_out_everywhere, name="sign-out-everywhere"),
    path("newsletters/", views.newsletter_change, name="newsletters"),
    path("language/", views.language_change, name="language"),
    path("gifts/<int:gift_id>/amount/", gift_views.gift_amount, name="gift-amount"),
    path("gifts/<int:gift_id>/cancel/", gift_views.gift_cancel, name="gift-cancel"),
    path("gifts/<int:gift_id>/card/", gift_views.gift_card_start, name="gift-card"),
    path(
        "gifts/<int:gift_id>/card/confirm/",
        gift_views.gift_card_confirm,
        name="gift-card-confirm",
    ),
    path("receipts/<int:donation_id>/", gift_views.receipt, name="receipt"),
    path("data/", views.data_export, name="data-export"),
    path("data/delete/", views.data_delete, name="data-delete"),
    path("email/", views.email_change, name="email-change"),
    path("email/confirm/<str:token>/", views.email_confirm, name="email-confirm"),
]
