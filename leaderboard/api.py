"""REST API of the leaderboard read model."""
from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leaderboard.selectors import leaderboard_get

ERROR = OpenApiResponse(OpenApiTypes.OBJECT, description="JSON error with a `detail`")


class StandingSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    player_id = serializers.CharField()
    points = serializers.IntegerField()
    played = serializers.IntegerField()
    wins = serializers.IntegerField()
    draws = serializers.IntegerField()
    losses = serializers.IntegerField()
    score_for = serializers.IntegerField()
    score_against = serializers.IntegerField()


class LastEventSerializer(serializers.Serializer):
    position = serializers.IntegerField(source="id", help_text="Position in the read model's event log.")
    message_id = serializers.UUIDField()
    type = serializers.CharField()
    occurred_at = serializers.DateTimeField(help_text="When the producer wrote the event.")
    applied_at = serializers.DateTimeField(help_text="When the read model applied it.")


class LeaderboardSerializer(serializers.Serializer):
    tournament_id = serializers.UUIDField()
    status = serializers.CharField(help_text="The tournament's status as its events tell it.")
    standings = StandingSerializer(many=True)
    last_event = LastEventSerializer(allow_null=True, help_text="The last event applied for this tournament.")
    lag_ms = serializers.FloatField(allow_null=True, help_text="occurred_at to applied_at of that event.")


class LeaderboardView(APIView):
    @extend_schema(operation_id="tournaments_leaderboard", responses={200: LeaderboardSerializer, 404: ERROR},
                   summary="Standings of a tournament (read model) and how far behind the events it is")
    def get(self, request: Request, tournament_id: str) -> Response:
        try:
            parsed_id = uuid.UUID(tournament_id)
        except ValueError:
            parsed_id = None
        board = leaderboard_get(tournament_id=str(parsed_id)) if parsed_id else None
        if board is None:
            return Response({"detail": "The leaderboard has no events for this tournament."},
                            status=status.HTTP_404_NOT_FOUND)
        # The standings are plain rows already; a serializer per row would cost most of the response time.
        return Response({
            "tournament_id": board.tournament_id, "status": board.status, "standings": board.standings,
            "last_event": LastEventSerializer(board.last_event).data if board.last_event else None,
            "lag_ms": board.lag_ms,
        })
