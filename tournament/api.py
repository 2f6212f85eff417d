"""REST API of the Match Engine: tournaments (started as a saga) and their results; thin views over services.

A match's `version` is its ETag; a correction must send it back in `If-Match`
(412 when stale, 428 when missing), so two clients never overwrite each other.
"""
from __future__ import annotations

import uuid

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sagas.orchestrator import IdempotencyConflict
from tournament import services
from tournament.models import Match, Tournament, TournamentStatus
from tournament.selectors import match_get, tournament_list
from tournament.services import (
    NAME_MAX,
    PARTICIPANTS_MAX,
    PARTICIPANTS_MIN,
    TournamentInvalid,
    tournament_create,
)

REFUSAL_STATUS: dict[type[services.MatchEngineError], int] = {
    services.TournamentNotFound: status.HTTP_404_NOT_FOUND,
    services.MatchNotFound: status.HTTP_404_NOT_FOUND,
    services.InvalidMatch: status.HTTP_400_BAD_REQUEST,
    services.TournamentNotActive: status.HTTP_409_CONFLICT,
    services.StaleVersion: status.HTTP_412_PRECONDITION_FAILED,
}
ERROR = OpenApiResponse(OpenApiTypes.OBJECT, description="JSON error: `detail` (and `errors` for invalid fields)")
ETAG = OpenApiParameter("ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200, 201],
                        description="The match version, quoted: send it back in If-Match to correct the result.")
IF_MATCH = OpenApiParameter("If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                            description="The version (ETag) of the match the correction is based on.")


class MatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = Match
        fields = ["id", "tournament_id", "player_a", "player_b", "score_a", "score_b", "version"]
        read_only_fields = fields


class MatchRecordSerializer(serializers.Serializer):
    player_a = serializers.CharField(max_length=64)
    player_b = serializers.CharField(max_length=64)
    score_a = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
    score_b = serializers.IntegerField(min_value=0, max_value=2**31 - 1)


class MatchCorrectSerializer(serializers.Serializer):
    score_a = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
    score_b = serializers.IntegerField(min_value=0, max_value=2**31 - 1)


class TournamentCompletedSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tournament
        fields = ["id", "status", "version"]
        read_only_fields = fields


def refusal(exc: services.MatchEngineError) -> Response:
    return Response({"detail": str(exc)}, status=REFUSAL_STATUS[type(exc)])


def not_found(what: str) -> Response:
    return Response({"detail": f"{what} does not exist."}, status=status.HTTP_404_NOT_FOUND)


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def match_response(match: Match, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(MatchSerializer(match).data, status=status_code, headers={"ETag": f'"{match.version}"'})


def parse_if_match(header: str) -> int | None:
    """Return the version in an If-Match header (`"3"`, `W/"3"` or `3`), or None when it is not one."""
    value = header.strip().removeprefix("W/").strip('"')
    return int(value) if value.isdigit() else None


class MatchListView(APIView):
    @extend_schema(operation_id="matches_record", request=MatchRecordSerializer,
                   responses={201: MatchSerializer, 400: ERROR, 404: ERROR, 409: ERROR}, parameters=[ETAG],
                   summary="Record a result (the tournament must be ACTIVE)")
    def post(self, request: Request, tournament_id: str) -> Response:
        parsed_id = parse_uuid(tournament_id)
        if parsed_id is None:
            return not_found("The tournament")
        body = MatchRecordSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            match = services.match_record(tournament_id=parsed_id, **body.validated_data)
        except services.MatchEngineError as exc:
            return refusal(exc)
        return match_response(match, status.HTTP_201_CREATED)


class MatchDetailView(APIView):
    @extend_schema(operation_id="matches_retrieve", responses={200: MatchSerializer, 404: ERROR}, parameters=[ETAG],
                   summary="Read a result and its version (ETag)")
    def get(self, request: Request, tournament_id: str, match_id: str) -> Response:
        parsed_tournament, parsed_match = parse_uuid(tournament_id), parse_uuid(match_id)
        match = (match_get(tournament_id=parsed_tournament, match_id=parsed_match)
                 if parsed_tournament and parsed_match else None)
        return match_response(match) if match else not_found("The match")

    @extend_schema(operation_id="matches_correct", request=MatchCorrectSerializer, parameters=[IF_MATCH, ETAG],
                   responses={200: MatchSerializer, 400: ERROR, 404: ERROR, 409: ERROR, 412: ERROR, 428: ERROR},
                   summary="Correct a result (optimistic concurrency: If-Match must carry the current version)")
    def patch(self, request: Request, tournament_id: str, match_id: str) -> Response:
        parsed_tournament, parsed_match = parse_uuid(tournament_id), parse_uuid(match_id)
        if parsed_tournament is None or parsed_match is None:
            return not_found("The match")
        header = request.headers.get("If-Match")
        if header is None:
            return Response({"detail": "If-Match is required: send the ETag (version) you read."},
                            status=status.HTTP_428_PRECONDITION_REQUIRED)
        expected_version = parse_if_match(header)
        if expected_version is None:
            return Response({"detail": f"If-Match must carry one match version, like \"3\"; got {header!r}."},
                            status=status.HTTP_400_BAD_REQUEST)
        body = MatchCorrectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            match = services.match_correct(tournament_id=parsed_tournament, match_id=parsed_match,
                                           expected_version=expected_version, **body.validated_data)
        except services.MatchEngineError as exc:
            return refusal(exc)
        return match_response(match)


class TournamentCompleteView(APIView):
    @extend_schema(operation_id="tournaments_complete", request=None,
                   responses={200: TournamentCompletedSerializer, 404: ERROR, 409: ERROR},
                   summary="End an ACTIVE tournament; later results are refused")
    def post(self, request: Request, tournament_id: str) -> Response:
        parsed_id = parse_uuid(tournament_id)
        if parsed_id is None:
            return not_found("The tournament")
        try:
            tournament = services.tournament_complete(tournament_id=parsed_id)
        except services.MatchEngineError as exc:
            return refusal(exc)
        return Response(TournamentCompletedSerializer(tournament).data)


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
