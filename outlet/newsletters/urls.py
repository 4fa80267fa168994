from django.urls import path

from outlet.newsletters import views

app_name = "newsletters"

urlpatterns = [
    path("", views.newsletter_index, name="index"),
    path("thanks/", views.signup_thanks, name="thanks"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("link/", views.link_request, name="link-request"),
]
