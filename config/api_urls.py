"""The REST API of every service, mounted under /api/."""
from django.urls import include, path

urlpatterns = [
    path("", include("tournament.urls")),
    path("", include("scores.urls")),
    path("", include("sagas.urls")),
    path("", include("leaderboard.urls")),
]
