"""REST API of the saga log (staff only): list, read with its steps, retry a FAILED saga."""
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sagas.definitions import DEFINITIONS
from sagas.models import Saga, SagaState
from sagas.orchestrator import SagaStateError, saga_retry
from sagas.selectors import saga_list, saga_steps


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()


class SagaSerializer(serializers.ModelSerializer):
    current_step = serializers.SerializerMethodField()
    steps = serializers.SerializerMethodField()

    class Meta:
        model = Saga
        fields = ["id", "type", "state", "current_step", "correlation_id", "error", "steps", "deadline",
                  "created_at", "updated_at", "finished_at"]

    def get_current_step(self, saga: Saga) -> str:
        return DEFINITIONS[saga.type].steps[saga.current_step].name

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, saga: Saga) -> list[dict]:
        return StepSerializer(saga_steps(saga=saga), many=True).data


class SagaListView(generics.ListAPIView):
    serializer_class = SagaSerializer
    permission_classes = [IsAdminUser]

    def get_queryset(self):
        state = self.request.query_params.get("state")
        if state and state not in SagaState.values:
            raise ValidationError({"state": [f"must be one of {', '.join(SagaState.values)}"]})
        return saga_list(state=state, type=self.request.query_params.get("type"))

    @extend_schema(parameters=[OpenApiParameter("state", enum=SagaState.values),
                               OpenApiParameter("type", enum=sorted(DEFINITIONS))])
    def get(self, request: Request, *args, **kwargs) -> Response:
        """List sagas, newest first, optionally of one state and type (staff)."""
        return super().get(request, *args, **kwargs)


class SagaDetailView(generics.RetrieveAPIView):
    """Read one saga with its steps' timeline (staff)."""

    serializer_class = SagaSerializer
    permission_classes = [IsAdminUser]
    queryset = saga_list()


class SagaRetryView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses={202: SagaSerializer, 404: OpenApiResponse(),
                                            409: OpenApiResponse(description="The saga is not FAILED.")})
    def post(self, request: Request, pk) -> Response:
        """Re-drive a FAILED saga's compensation from the step where it stopped (staff)."""
        try:
            saga = saga_retry(saga_id=pk)
        except Saga.DoesNotExist:
            raise NotFound(f"no saga {pk}") from None
        except SagaStateError as exc:
            raise Conflict(str(exc)) from exc
        return Response(SagaSerializer(saga).data, status=status.HTTP_202_ACCEPTED)
