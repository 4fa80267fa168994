from django.urls import path

from . import webhooks

app_name = "donations"

urlpatterns = [
    path("webhook/", webhooks.webhook, name="webhook"),
]
