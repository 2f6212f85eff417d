"""REST API of the Score Engine's players: register, read, suspend or lift."""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scores.models import Player
from scores.selectors import player_get
from scores.services import PlayerExists, player_register, player_update


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
