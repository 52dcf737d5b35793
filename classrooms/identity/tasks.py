"""Periodic reading of linked courses' rosters (run by the worker's beat): someone the
course removed loses the class within one period, even if they never launch again."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from classrooms.identity import selectors, services
from classrooms.identity.errors import SignInRefused

log = logging.getLogger("classrooms.identity")


@shared_task(name="identity.sync_course_rosters", ignore_result=True)
def sync_course_rosters() -> int:
    """Read the roster of every linked course not read for a period; returns how many were read."""
    close_old_connections()
    due = selectors.course_links_due(timezone.now() - timedelta(seconds=settings.IDENTITY_ROSTER_SYNC_SECONDS))
    done = 0
    for link in due[:200]:
        try:
            services.course_roster_sync(link=link)
            done += 1
        except SignInRefused as refusal:
            platform = link.context.deployment.registration.school_platform
            services.problem_record(refusal=refusal, school=platform.school, platform=platform)
        except Exception:  # one course's failure must not stop the others
            log.exception("roster of course link %s could not be read", link.id)
    return done
