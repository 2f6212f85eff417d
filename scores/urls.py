"""REST routes of the scores app, mounted under /api/."""
from django.urls import path

from scores.api import PlayerDetailView, PlayerListView

urlpatterns = [
    path("players/", PlayerListView.as_view(), name="player-list"),
    path("players/<str:player_id>/", PlayerDetailView.as_view(), name="player-detail"),
]
