"""Every API error is JSON with a clear message; database integrity errors are a 409, never a 500."""
from django.db import IntegrityError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


def json_exception_handler(exc: Exception, context: dict) -> Response | None:
    response = exception_handler(exc, context)
    if response is None and isinstance(exc, IntegrityError):
        return Response({"detail": "The request conflicts with the current state.", "code": "conflict"},
                        status=status.HTTP_409_CONFLICT)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        # Field errors: keep them, add a sentence a human can read at a glance.
        response.data = {"detail": "Invalid input.", "errors": response.data}
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": " ".join(str(item) for item in response.data)}
    return response
