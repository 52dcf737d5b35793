"""The authentication backend that sessions opened by a sign-in service or an LTI launch
are recorded under. It authenticates nobody by itself: the flows in `oidc`, `cas` and
`lti` check the service's answer, then log the person in with this backend."""

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest


class SignInServiceBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, **credentials: object) -> None:
        return None  # never from a username and password
