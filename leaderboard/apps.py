from django.apps import AppConfig


class LeaderboardConfig(AppConfig):
    name = "leaderboard"
    verbose_name = "Leaderboard (read model)"

    def ready(self) -> None:
        # Register this service's event consumers with the messaging framework.
        from leaderboard import handlers  # noqa: F401
