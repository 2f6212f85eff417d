"""Pins each service app to its own database alias and keeps services apart."""
from django.conf import settings
from django.db.models import Model

DEFAULT_ALIAS = "default"


def alias_for_app(app_label: str) -> str:
    """Return the alias that owns `app_label`: a service's own, or `default`."""
    return app_label if app_label in settings.SERVICE_SCHEMAS else DEFAULT_ALIAS


class ServiceRouter:
    """Every service reads, writes and migrates only its own alias.

    Relations across aliases are refused: a foreign key from one service to
    another would be a cross-service transaction in disguise.
    """

    def db_for_read(self, model: type[Model], **hints) -> str:
        return alias_for_app(model._meta.app_label)

    def db_for_write(self, model: type[Model], **hints) -> str:
        return alias_for_app(model._meta.app_label)

    def allow_relation(self, obj1: Model, obj2: Model, **hints) -> bool:
        return alias_for_app(obj1._meta.app_label) == alias_for_app(obj2._meta.app_label)

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool:
        return db == alias_for_app(app_label)
