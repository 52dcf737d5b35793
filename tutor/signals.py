"""Signing out closes the person's open sockets at once."""

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from tutor import events


@receiver(user_logged_out)
def close_sockets_on_logout(sender, request, user, **kwargs):
    if user is not None:
        events.person_access_changed(user.id, ended_session=request.session.session_key or "")
