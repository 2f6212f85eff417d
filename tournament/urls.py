"""REST routes of the tournament app, mounted under /api/."""
from django.urls import path

from tournament.api import TournamentDetailView, TournamentListCreateView

urlpatterns = [
    path("tournaments/", TournamentListCreateView.as_view(), name="tournament-list"),
    path("tournaments/<uuid:pk>/", TournamentDetailView.as_view(), name="tournament-detail"),
]
