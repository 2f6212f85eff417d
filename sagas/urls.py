"""REST routes of the sagas app, mounted under /api/."""
from django.urls import path

from sagas.api import SagaDetailView, SagaListView, SagaRetryView

urlpatterns = [
    path("sagas/", SagaListView.as_view(), name="saga-list"),
    path("sagas/<uuid:pk>/", SagaDetailView.as_view(), name="saga-detail"),
    path("sagas/<uuid:pk>/retry/", SagaRetryView.as_view(), name="saga-retry"),
]
