"""REST routes of the tournament app, mounted under /api/."""
from django.urls import path

from tournament import api

urlpatterns: list = [
    path("tournaments/", api.TournamentListCreateView.as_view(), name="tournament-list"),
    path("tournaments/<uuid:pk>/", api.TournamentDetailView.as_view(), name="tournament-detail"),
    path("tournaments/<str:tournament_id>/matches/", api.MatchListView.as_view(), name="match-list"),
    path("tournaments/<str:tournament_id>/matches/<str:match_id>/", api.MatchDetailView.as_view(),
         name="match-detail"),
    path("tournaments/<str:tournament_id>/complete/", api.TournamentCompleteView.as_view(), name="tournament-complete"),
]
