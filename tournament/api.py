"""REST API of the Match Engine's tournaments: start one (a saga), list them, read one."""
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from sagas.orchestrator import IdempotencyConflict
from tournament.models import Tournament, TournamentStatus
from tournament.selectors import tournament_list
from tournament.services import NAME_MAX, PARTICIPANTS_MAX, PARTICIPANTS_MIN, TournamentInvalid, tournament_create

IDEMPOTENCY_KEY_MAX = 200


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class TournamentSerializer(serializers.ModelSerializer):
    participants = serializers.SlugRelatedField(slug_field="player_id", many=True, read_only=True)

    class Meta:
        model = Tournament
        fields = ["id", "name", "status", "participants", "saga_id", "version", "cancel_reason", "created_at",
                  "updated_at"]


class TournamentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(min_length=1, max_length=NAME_MAX, trim_whitespace=False)
    participants = serializers.ListField(child=serializers.CharField(max_length=64), min_length=PARTICIPANTS_MIN,
                                         max_length=PARTICIPANTS_MAX)


TournamentAcceptedSerializer = inline_serializer("TournamentAccepted", {
    "id": serializers.UUIDField(), "status": serializers.CharField(), "saga_id": serializers.UUIDField()})

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="Repeat a request safely: the same key and body return the same tournament; "
                "the same key with another body is a 409.")


class TournamentListCreateView(generics.ListAPIView):
    serializer_class = TournamentSerializer

    def get_queryset(self):
        status_filter = self.request.query_params.get("status")
        if status_filter and status_filter not in TournamentStatus.values:
            raise ValidationError({"status": [f"must be one of {', '.join(TournamentStatus.values)}"]})
        return tournament_list(status=status_filter)

    @extend_schema(parameters=[OpenApiParameter("status", enum=TournamentStatus.values)])
    def get(self, request: Request, *args, **kwargs) -> Response:
        """List tournaments, newest first, optionally of one status."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=TournamentCreateSerializer, parameters=[IDEMPOTENCY_KEY],
        responses={202: OpenApiResponse(TournamentAcceptedSerializer,
                                        description="Accepted: the create-tournament saga runs; "
                                                    "the Location answers at once (PENDING)."),
                   400: OpenApiResponse(description="Invalid name or participants."),
                   409: OpenApiResponse(description="The Idempotency-Key was used with another body.")})
    def post(self, request: Request) -> Response:
        """Start the create-tournament saga; answer 202 with the tournament's id and Location."""
        body = TournamentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
            raise ValidationError({"Idempotency-Key": [f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters"]})
        try:
            started = tournament_create(
                name=body.validated_data["name"], participants=body.validated_data["participants"],
                # A key is the client's: scoped to the user, two users never collide.
                idempotency_key=f"{request.user.pk}:{key}" if key else None,
                correlation_id=request.headers.get("X-Request-ID", "")[:100])
        except TournamentInvalid as exc:
            raise ValidationError({exc.field: [str(exc)]}) from exc
        except IdempotencyConflict as exc:
            raise Conflict(str(exc)) from exc
        location = request.build_absolute_uri(reverse("tournament-detail", args=[started.tournament_id]))
        return Response({"id": started.tournament_id, "status": TournamentStatus.PENDING, "saga_id": started.saga_id},
                        status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class TournamentDetailView(generics.RetrieveAPIView):
    """Read one tournament."""

    serializer_class = TournamentSerializer
    queryset = tournament_list()
