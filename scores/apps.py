from django.apps import AppConfig


class ScoresConfig(AppConfig):
    name = "scores"
    verbose_name = "Score Engine"

    def ready(self) -> None:
        # Register this service's event consumers with the messaging framework.
        from scores import handlers  # noqa: F401
