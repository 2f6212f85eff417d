"""REST routes of the scores app, mounted under /api/."""
from django.urls import path

from scores import api

urlpatterns: list = [
    path("players/<str:player_id>/ledger/", api.PlayerLedgerView.as_view(), name="player-ledger"),
]
