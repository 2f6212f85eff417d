"""REST routes of the scores app, mounted under /api/."""
from django.urls import path

from scores import api

urlpatterns: list = [
    path("players/", api.PlayerListView.as_view(), name="player-list"),
    path("players/<str:player_id>/", api.PlayerDetailView.as_view(), name="player-detail"),
    path("players/<str:player_id>/ledger/", api.PlayerLedgerView.as_view(), name="player-ledger"),
]
