"""API clients authenticated the way real clients are: a DRF token in the Authorization header."""
import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_client(*, staff: bool) -> APIClient:
    """Return a client for a new user (staff or not) sending its own token."""
    user = get_user_model().objects.create_user(username=f"user-{uuid.uuid4().hex[:10]}", is_staff=staff)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api_client(db) -> APIClient:
    return token_client(staff=False)


@pytest.fixture
def staff_api_client(db) -> APIClient:
    return token_client(staff=True)
