from django.urls import path

from outlet.newsletters import archive, views

app_name = "newsletters"

urlpatterns = [
    path("", views.newsletter_index, name="index"),
    path("thanks/", views.signup_thanks, name="thanks"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("link/", views.link_request, name="link-request"),
    # The public archive of sent issues.
    path("<slug:slug>/archive/", archive.issue_archive, name="archive"),
    path("<slug:slug>/archive/feed/", archive.IssueArchiveFeed(), name="archive-feed"),
    path("<slug:slug>/archive/<int:pk>/", archive.issue_detail, name="issue-detail"),
]
