"""REST API of the Score Engine: players (register, read, suspend or lift) and their ledgers."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scores.models import Player
from scores.selectors import ledger_get, player_get
from scores.services import PlayerExists, player_register, player_update

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


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PlayerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Player
        fields = ["id", "name", "suspended", "version", "created_at", "updated_at"]
        read_only_fields = ["suspended", "version", "created_at", "updated_at"]
        # Uniqueness is the service's to decide (a 409), not a serializer query's.
        extra_kwargs = {"id": {"validators": Player._meta.get_field("id").validators}}


class PlayerUpdateSerializer(serializers.Serializer):
    suspended = serializers.BooleanField()


def _player_or_404(player_id: str) -> Player:
    try:
        return player_get(player_id=player_id)
    except Player.DoesNotExist:
        raise NotFound(f"no player {player_id!r}") from None


class PlayerListView(APIView):
    @extend_schema(request=PlayerSerializer, responses={201: PlayerSerializer, 400: OpenApiResponse(),
                                                        409: OpenApiResponse(description="The id is taken.")})
    def post(self, request: Request) -> Response:
        """Register a player in the Score Engine."""
        body = PlayerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            player = player_register(player_id=body.validated_data["id"], name=body.validated_data["name"])
        except PlayerExists as exc:
            raise Conflict(str(exc)) from exc
        return Response(PlayerSerializer(player).data, status=status.HTTP_201_CREATED)


class PlayerDetailView(APIView):
    @extend_schema(responses={200: PlayerSerializer, 404: OpenApiResponse()})
    def get(self, request: Request, player_id: str) -> Response:
        """Read a player."""
        return Response(PlayerSerializer(_player_or_404(player_id)).data)

    @extend_schema(request=PlayerUpdateSerializer, responses={200: PlayerSerializer, 400: OpenApiResponse(),
                                                              404: OpenApiResponse()})
    def patch(self, request: Request, player_id: str) -> Response:
        """Suspend a player (`{"suspended": true}`) or lift the suspension."""
        body = PlayerUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            player = player_update(player_id=player_id, suspended=body.validated_data["suspended"])
        except Player.DoesNotExist:
            raise NotFound(f"no player {player_id!r}") from None
        return Response(PlayerSerializer(player).data)
