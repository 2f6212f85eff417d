from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class SagasConfig(AppConfig):
    name = "sagas"
    verbose_name = "Sagas and messaging"

    def ready(self) -> None:
        # Know every event type of every installed service (a message of an
        # unknown type is a dead letter; a known one nobody consumes is not).
        autodiscover_modules("messages")
