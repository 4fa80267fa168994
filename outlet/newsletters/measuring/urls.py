from django.urls import re_path

from outlet.newsletters.measuring import views

app_name = "tracking"

# Anything under c/ is answered (an altered or cut token redirects home, never 404s).
urlpatterns = [
    re_path(r"^c/(?P<token>.*)$", views.click_redirect, name="click"),
    re_path(r"^o/(?P<token>.*)$", views.open_pixel, name="open"),
]
