from django.apps import AppConfig


class TutorConfig(AppConfig):
    name = "tutor"

    def ready(self) -> None:
        from tutor import signals  # noqa: F401
