"""REST routes of the leaderboard app, mounted under /api/."""
from django.urls import path

from leaderboard import api

urlpatterns: list = [
    path("tournaments/<str:tournament_id>/leaderboard/", api.LeaderboardView.as_view(), name="tournament-leaderboard"),
]
