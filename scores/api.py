"""REST API of the Score Engine's ledger: thin views over `scores.selectors`."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scores.selectors import ledger_get

ERROR = OpenApiResponse(OpenApiTypes.OBJECT, description="JSON error: `detail` (and `errors` for invalid fields)")


class LedgerQuerySerializer(serializers.Serializer):
    tournament = serializers.UUIDField(help_text="The tournament whose ledger to read.")
    as_of = serializers.DateTimeField(required=False, help_text="Read the ledger as it was then (default: now).")
    version = serializers.IntegerField(required=False, min_value=1, help_text="Read the ledger at this version.")


class LedgerEventSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    type = serializers.CharField()
    schema_version = serializers.IntegerField(help_text="The schema the payload is in (stored events are upcast).")
    payload = serializers.DictField()
    recorded_at = serializers.DateTimeField()


class LedgerSerializer(serializers.Serializer):
    player_id = serializers.CharField(source="state.player_id")
    tournament_id = serializers.UUIDField(source="state.tournament_id")
    status = serializers.ChoiceField(choices=["OPEN", "CLOSED"], source="state.status")
    points = serializers.IntegerField(source="state.points")
    version = serializers.IntegerField(source="state.version")
    events = LedgerEventSerializer(many=True)


class PlayerLedgerView(APIView):
    @extend_schema(operation_id="players_ledger", parameters=[LedgerQuerySerializer],
                   responses={200: LedgerSerializer, 400: ERROR, 404: ERROR},
                   summary="A player's score ledger in a tournament, as of a time or version (default: now)")
    def get(self, request: Request, player_id: str) -> Response:
        query = LedgerQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        ledger = ledger_get(player_id=player_id, tournament_id=str(query.validated_data["tournament"]),
                            as_of=query.validated_data.get("as_of"), version=query.validated_data.get("version"))
        if ledger is None:
            return Response({"detail": "This player had no ledger in that tournament at that point."},
                            status=status.HTTP_404_NOT_FOUND)
        return Response(LedgerSerializer(ledger).data)
