from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Project-wide operator commands (migrate_all, bootstrap_dev); no models."""

    name = "config"
    verbose_name = "Platform"
