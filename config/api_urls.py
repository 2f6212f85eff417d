"""The REST API of every service, mounted under /api/."""

urlpatterns: list = []
