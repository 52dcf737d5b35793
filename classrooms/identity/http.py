"""Requests to sign-in services and platforms never wait forever."""

import requests
from django.conf import settings


class TimeoutSession(requests.Session):
    def request(self, *args: object, **kwargs: object) -> requests.Response:
        kwargs.setdefault("timeout", settings.IDENTITY_HTTP_TIMEOUT_SECONDS)
        return super().request(*args, **kwargs)
