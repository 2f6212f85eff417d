"""REST routes of the sagas app, mounted under /api/."""
from django.urls import path  # noqa: F401

urlpatterns: list = []
