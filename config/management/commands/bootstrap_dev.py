"""Create the development admin and its API token, and print how to reach the service."""
import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create (or reuse) the development superuser and its API token; print the URLs. DEBUG only."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("DEV_ADMIN_USER", "admin"))
        parser.add_argument("--password", default=os.environ.get("DEV_ADMIN_PASSWORD", "admin"))
        parser.add_argument("--base-url", default=os.environ.get("DEV_BASE_URL")
                            or f"http://{os.environ.get('WEB_BIND', '127.0.0.1:8000')}")

    def handle(self, *args, username: str, password: str, base_url: str, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("bootstrap_dev creates a well-known password; it runs only with DJANGO_DEBUG on")
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(self.style.SUCCESS("Development admin ready"))
        self.stdout.write(f"  admin:     {base_url}/admin/  ({username} / {password if created else '<unchanged>'})")
        self.stdout.write(f"  API token: {token.key}")
        self.stdout.write(f"  try:      curl -H 'Authorization: Token {token.key}' {base_url}/api/tournaments/")
        self.stdout.write(f"  API docs:  {base_url}/api/docs/   health: {base_url}/healthz")
