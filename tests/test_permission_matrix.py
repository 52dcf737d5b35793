"""Who may reach what: every route of the URL configuration and every WebSocket route,
for every persona, against objects of their own class, another class of their school,
and another school.

The routes are read from the URL configuration itself (only the operator's /operator/
admin and static files are skipped): a route with no row in the table below fails
("route X has no permission expectations"), so no view can go unchecked. Each request
runs in a savepoint that is rolled back, so every persona meets the same world.

Personas (tests/conftest.py): anonymous; student and classmate of `classroom` (the
classmate's urgent message raised an alert);
stranger_student of `other_classroom` (same school); teacher of `classroom`;
other_teacher of `other_classroom`; outsider (the school, no class); school_admin of
`school`; other_admin of `other_school`, which has its own class and student; reviewer
of `classroom` (reviews its drafts, does not run the class).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from classrooms.models import Classroom, Membership, SafeguardingContact
from tests.classrooms.identity.world import add_identity_world
from tests.conftest import make_person
from tests.tutor.helpers import ask, draft, socket
from tutor.models import CourseDocument, SafeguardingExample
from tutor.routing import websocket_urlpatterns

PERSONAS = (
    "anonymous",
    "student",
    "classmate",
    "stranger_student",
    "teacher",
    "other_teacher",
    "outsider",
    "school_admin",
    "other_admin",
    "reviewer",
)

# How a route's URL arguments are filled, by target: whose object the request names.
TARGETS = {
    "-": lambda w: {},
    "own class": lambda w: {"classroom_id": w.classroom.id},
    "other class": lambda w: {"classroom_id": w.other_classroom.id},
    "other school's class": lambda w: {"classroom_id": w.foreign_classroom.id},
    "student's conversation": lambda w: {"conversation_id": w.conversation.id},
    "stranger's conversation": lambda w: {"conversation_id": w.stranger_conversation.id},
    "student's reply": lambda w: {"reply_id": w.reply.id},
    "stranger's reply": lambda w: {"reply_id": w.stranger_reply.id},
    "student": lambda w: {"user_id": w.student.id},
    "other school's student": lambda w: {"user_id": w.foreign_student.id},
    "own class, its student": lambda w: {"classroom_id": w.classroom.id, "user_id": w.student.id},
    "other school's class, its student": lambda w: {
        "classroom_id": w.foreign_classroom.id,
        "user_id": w.foreign_student.id,
    },
    "own class's document": lambda w: {"classroom_id": w.classroom.id, "document_id": w.document.id},
    "other class's document": lambda w: {"classroom_id": w.other_classroom.id, "document_id": w.other_document.id},
    # The other class's document named under one's own class: still not found.
    "other class's document, own class": lambda w: {"classroom_id": w.classroom.id, "document_id": w.other_document.id},
    "own class, its conversation": lambda w: {"classroom_id": w.classroom.id, "conversation_id": w.conversation.id},
    "other class, its conversation": lambda w: {
        "classroom_id": w.other_classroom.id,
        "conversation_id": w.stranger_conversation.id,
    },
    "own class, another class's conversation": lambda w: {
        "classroom_id": w.classroom.id,
        "conversation_id": w.stranger_conversation.id,
    },
    "classmate's alert": lambda w: {"alert_id": w.alert.id},
    "stranger's alert": lambda w: {"alert_id": w.stranger_alert.id},
    "own school's contact": lambda w: {"contact_id": w.contact.id},
    "other school's contact": lambda w: {"contact_id": w.foreign_contact.id},
    "own school's example": lambda w: {"example_id": w.example.id},
    "other school's example": lambda w: {"example_id": w.foreign_example.id},
    # Sign-in services and learning platforms (tests/classrooms/identity/world.py)
    "school's sign-in": lambda w: {"sign_in_id": w.sign_in.id},
    "other school's sign-in": lambda w: {"sign_in_id": w.foreign_sign_in.id},
    "OIDC provider": lambda w: {"key": w.oidc.key},
    "CAS service": lambda w: {"key": w.ent.key},
    "registration address": lambda w: {"token": "not-a-registration-address"},
    "platform's login": lambda w: {"registration_uuid": w.platform.registration.uuid},
    "school's platform": lambda w: {"platform_id": w.platform.id},
    "other school's platform": lambda w: {"platform_id": w.foreign_platform.id},
    "school's deployment": lambda w: {"platform_id": w.platform.id, "deployment_id": w.deployment.id},
    "other school's deployment": lambda w: {
        "platform_id": w.foreign_platform.id,
        "deployment_id": w.foreign_deployment.id,
    },
    "school's course": lambda w: {"link_id": w.course_link.id},
    "other school's course": lambda w: {"link_id": w.foreign_course_link.id},
}


def tutor_settings(w):
    return {
        "subject": "Maths",
        "level": "4e",
        "reply_language": "",
        "tutor_instructions": "Be kind.",
        "max_reply_words": 60,
    }


def roster_file(w):
    text = "student_number,first_name,last_name,class\n77,Léa,Martin,Maths 4e B\n"
    return {"file": SimpleUploadedFile("roster.csv", text.encode(), "text/csv")}


def sign_up_form(w):
    return {
        "code": w.classroom.join_code,
        "first_name": "Léa",
        "last_name": "Martin",
        "username": "new.pupil",
        "password1": "blue-kite-river-42",
        "password2": "blue-kite-river-42",
    }


def material_file(w):
    return {"file": SimpleUploadedFile("notes.txt", b"Stomata are pores in the leaf.", "text/plain")}


def row(method: str, target: str, expected: str, data=None):
    statuses = expected.split()
    assert len(statuses) == len(PERSONAS), expected
    return SimpleNamespace(method=method, target=target, data=data, expected=dict(zip(PERSONAS, statuses, strict=True)))


# Expected HTTP status per persona. 302 for anonymous is the sign-in page; 403 is
# "this page is not for your role"; 404 is "not yours" (missing and forbidden look alike).
#            anonymous student classmate stranger teacher other_teacher outsider school_admin other_admin reviewer
MATRIX = {
    # The student's side
    "home": [row("GET", "-", "302 302 302 302 302 302 302 302 302 302")],
    "student_classes": [row("GET", "-", "302 200 200 200 200 200 200 200 200 200")],
    "classroom": [
        row("GET", "own class", "302 200 200 404 404 404 404 404 404 404"),
        row("GET", "other class", "302 404 404 200 404 404 404 404 404 404"),
        row("GET", "other school's class", "302 404 404 404 404 404 404 404 404 404"),
    ],
    "conversation_new": [
        row("POST", "own class", "302 302 302 404 404 404 404 404 404 404"),
        row("POST", "other class", "302 404 404 302 404 404 404 404 404 404"),
        row("POST", "other school's class", "302 404 404 404 404 404 404 404 404 404"),
        row("GET", "own class", "302 405 405 405 405 405 405 405 405 405"),
    ],
    "conversation": [
        row("GET", "student's conversation", "302 200 404 404 404 404 404 404 404 404"),
        row("GET", "stranger's conversation", "302 404 404 200 404 404 404 404 404 404"),
    ],
    "conversation_messages": [
        row("GET", "student's conversation", "302 200 404 404 404 404 404 404 404 404"),
        row("GET", "stranger's conversation", "302 404 404 200 404 404 404 404 404 404"),
    ],
    # The teacher's review
    "review_queue": [row("GET", "-", "302 403 403 403 200 200 403 403 403 200")],
    "review_approve": [
        row("POST", "student's reply", "302 404 404 404 302 404 404 404 404 302"),
        row("POST", "stranger's reply", "302 404 404 404 404 302 404 404 404 404"),
    ],
    "review_reject": [
        row("POST", "student's reply", "302 404 404 404 302 404 404 404 404 302"),
        row("POST", "stranger's reply", "302 404 404 404 404 302 404 404 404 404"),
    ],
    "review_regenerate": [
        row("POST", "student's reply", "302 404 404 404 302 404 404 404 404 302"),
        row("POST", "stranger's reply", "302 404 404 404 404 302 404 404 404 404"),
    ],
    "review_claim": [
        row("POST", "student's reply", "302 404 404 404 200 404 404 404 404 200"),
        row("POST", "stranger's reply", "302 404 404 404 404 200 404 404 404 404"),
    ],
    "review_split": [
        row("POST", "student's reply", "302 404 404 404 302 404 404 404 404 302"),
        row("POST", "stranger's reply", "302 404 404 404 404 302 404 404 404 404"),
    ],
    "review_check": [
        row("POST", "student's reply", "302 404 404 404 200 404 404 404 404 200", lambda w: {"text": "3 x 4 = 12"}),
        row("POST", "stranger's reply", "302 404 404 404 404 200 404 404 404 404", lambda w: {"text": "3 x 4 = 12"}),
        row("GET", "student's reply", "302 405 405 405 405 405 405 405 405 405"),
    ],
    "review_stats": [row("GET", "-", "302 403 403 403 200 200 403 200 200 200")],
    # The teacher's view of the class: its teachers and reviewers only
    "class_monitor": [
        row("GET", "own class", "302 404 404 404 200 404 404 404 404 200"),
        row("GET", "other class", "302 404 404 404 404 200 404 404 404 404"),
        row("GET", "other school's class", "302 404 404 404 404 404 404 404 404 404"),
    ],
    "class_report": [
        row("GET", "own class", "302 404 404 404 200 404 404 404 404 200"),
        row("GET", "other class", "302 404 404 404 404 200 404 404 404 404"),
        row("GET", "other school's class", "302 404 404 404 404 404 404 404 404 404"),
    ],
    "class_topics": [
        row("GET", "own class", "302 404 404 404 200 404 404 404 404 200"),
        row("GET", "other school's class", "302 404 404 404 404 404 404 404 404 404"),
    ],
    "class_report_csv": [
        row("GET", "own class", "302 404 404 404 200 404 404 404 404 200"),
        row("GET", "other school's class", "302 404 404 404 404 404 404 404 404 404"),
    ],
    "class_conversation": [
        row("GET", "own class, its conversation", "302 404 404 404 200 404 404 404 404 200"),
        row("GET", "other class, its conversation", "302 404 404 404 404 200 404 404 404 404"),
        row("GET", "own class, another class's conversation", "302 404 404 404 404 404 404 404 404 404"),
    ],
    # Probes: no session needed, nothing personal said. /readyz is 503 here (no worker runs
    # for the test's queue); /metrics is off until METRICS_TOKEN is set (tests/test_health.py).
    "favicon": [row("GET", "-", "301 301 301 301 301 301 301 301 301 301")],
    "healthz": [row("GET", "-", "200 200 200 200 200 200 200 200 200 200")],
    "readyz": [row("GET", "-", "503 503 503 503 503 503 503 503 503 503")],
    "metrics": [row("GET", "-", "404 404 404 404 404 404 404 404 404 404")],
    # Accounts and language
    "login": [row("GET", "-", "200 302 302 302 302 302 302 302 302 302")],
    "logout": [
        row("POST", "-", "302 302 302 302 302 302 302 302 302 302"),
        row("GET", "-", "405 405 405 405 405 405 405 405 405 405"),
    ],
    "language_choose": [
        row("POST", "-", "302 302 302 302 302 302 302 302 302 302", lambda w: {"language": "fr", "next": "/"})
    ],
    "sign_up": [
        row("GET", "-", "200 302 302 302 302 302 302 302 302 302"),
        row("POST", "-", "302 302 302 302 302 302 302 302 302 302", sign_up_form),
    ],
    "join_class": [
        row("GET", "-", "302 200 200 200 200 200 200 200 200 200"),
        # Joining other_classroom: students and the outsider get in; its own students
        # and staff are told why not (200, the page with the reason).
        row("POST", "-", "302 302 302 200 200 200 302 200 200 200", lambda w: {"code": w.other_classroom.join_code}),
    ],
    # Teachers: their class's tutor and join code
    "teach_home": [row("GET", "-", "302 403 403 403 200 200 403 403 403 403")],
    "teach_class": [
        row("GET", "own class", "302 404 404 404 200 404 404 200 404 404"),
        row("GET", "other class", "302 404 404 404 404 200 404 200 404 404"),
        row("GET", "other school's class", "302 404 404 404 404 404 404 404 200 404"),
        row("POST", "own class", "302 404 404 404 302 404 404 302 404 404", tutor_settings),
    ],
    "teach_join_code_rotate": [
        row("POST", "own class", "302 404 404 404 302 404 404 302 404 404"),
        row("POST", "other class", "302 404 404 404 404 302 404 302 404 404"),
        row("POST", "other school's class", "302 404 404 404 404 404 404 404 302 404"),
        row("GET", "own class", "302 405 405 405 405 405 405 405 405 405"),
    ],
    "teach_join_code_switch": [
        row("POST", "own class", "302 404 404 404 302 404 404 302 404 404", lambda w: {"enabled": "off"}),
        row("POST", "other school's class", "302 404 404 404 404 404 404 404 302 404", lambda w: {"enabled": "off"}),
    ],
    "teach_class_limits": [
        row("POST", "own class", "302 404 404 404 302 404 404 302 404 404", lambda w: {"per_hour": "5"}),
        row("POST", "other class", "302 404 404 404 404 302 404 302 404 404", lambda w: {"per_hour": "5"}),
        row("POST", "other school's class", "302 404 404 404 404 404 404 404 302 404", lambda w: {"per_hour": "5"}),
        row("GET", "own class", "302 405 405 405 405 405 405 405 405 405"),
    ],
    "teach_class_passwords": [
        row("GET", "own class", "302 404 404 404 200 404 404 200 404 404"),
        row("POST", "other class", "302 404 404 404 404 200 404 200 404 404"),
        row("POST", "other school's class", "302 404 404 404 404 404 404 404 200 404"),
    ],
    "teach_class_pause": [
        row("POST", "own class", "302 404 404 404 302 404 404 302 404 404", lambda w: {"paused": "on"}),
        row("POST", "other school's class", "302 404 404 404 404 404 404 404 302 404", lambda w: {"paused": "on"}),
    ],
    # Teachers: their class's course material
    "teach_material": [
        row("GET", "own class", "302 404 404 404 200 404 404 200 404 404"),
        row("GET", "other class", "302 404 404 404 404 200 404 200 404 404"),
        row("GET", "other school's class", "302 404 404 404 404 404 404 404 200 404"),
        row("POST", "own class", "302 404 404 404 302 404 404 302 404 404", material_file),
        row("POST", "other school's class", "302 404 404 404 404 404 404 404 302 404", material_file),
    ],
    "teach_material_status": [
        row("GET", "own class", "302 404 404 404 200 404 404 200 404 404"),
        row("GET", "other school's class", "302 404 404 404 404 404 404 404 200 404"),
    ],
    "teach_material_rename": [
        row("POST", "own class's document", "302 404 404 404 302 404 404 302 404 404", lambda w: {"name": "Ch. 5"}),
        row("POST", "other class's document", "302 404 404 404 404 302 404 302 404 404", lambda w: {"name": "Ch. 5"}),
        row("POST", "other class's document, own class", "302 404 404 404 404 404 404 404 404 404"),
        row("GET", "own class's document", "302 405 405 405 405 405 405 405 405 405"),
    ],
    "teach_material_replace": [
        row("POST", "own class's document", "302 404 404 404 302 404 404 302 404 404", material_file),
        row("POST", "other class's document, own class", "302 404 404 404 404 404 404 404 404 404", material_file),
    ],
    "teach_material_delete": [
        row("POST", "own class's document", "302 404 404 404 302 404 404 302 404 404"),
        row("POST", "other class's document", "302 404 404 404 404 302 404 302 404 404"),
        row("POST", "other class's document, own class", "302 404 404 404 404 404 404 404 404 404"),
    ],
    # School admins: their own school only
    "school_home": [row("GET", "-", "302 403 403 403 403 403 403 200 200 403")],
    "school_class_create": [
        row("POST", "-", "302 403 403 403 403 403 403 302 302 403", lambda w: {"name": "Latin 3e"}),
        row("GET", "-", "302 403 403 403 403 403 403 405 405 403"),
    ],
    "school_class": [
        row("GET", "own class", "302 403 403 403 403 403 403 200 404 403"),
        row("GET", "other school's class", "302 403 403 403 403 403 403 404 200 403"),
    ],
    "school_class_rename": [
        row("POST", "own class", "302 403 403 403 403 403 403 302 404 403", lambda w: {"name": "Renamed"}),
        row("POST", "other school's class", "302 403 403 403 403 403 403 404 302 403", lambda w: {"name": "Renamed"}),
    ],
    "school_class_archive": [
        row("POST", "own class", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's class", "302 403 403 403 403 403 403 404 302 403"),
        row("GET", "own class", "302 403 403 403 403 403 403 405 405 403"),
    ],
    "school_class_restore": [
        row("POST", "own class", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's class", "302 403 403 403 403 403 403 404 302 403"),
    ],
    "school_class_staff_assign": [
        row(
            "POST",
            "own class",
            "302 403 403 403 403 403 403 302 404 403",
            lambda w: {"person": w.outsider.id, "role": "teacher"},
        ),
        row(
            "POST",
            "other school's class",
            "302 403 403 403 403 403 403 404 302 403",
            lambda w: {"person": w.outsider.id, "role": "teacher"},
        ),
    ],
    "school_class_student_enrol": [
        row("POST", "own class", "302 403 403 403 403 403 403 302 404 403", lambda w: {"person": w.outsider.id}),
        row(
            "POST",
            "other school's class",
            "302 403 403 403 403 403 403 404 302 403",
            lambda w: {"person": w.outsider.id},
        ),
    ],
    "school_class_member_remove": [
        row("POST", "own class, its student", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's class, its student", "302 403 403 403 403 403 403 404 302 403"),
    ],
    "school_class_student_move": [
        row(
            "POST",
            "own class, its student",
            "302 403 403 403 403 403 403 302 404 403",
            lambda w: {"to_classroom": w.other_classroom.id},
        ),
        row(
            "POST",
            "other school's class, its student",
            "302 403 403 403 403 403 403 404 302 403",
            lambda w: {"to_classroom": w.other_classroom.id},
        ),
    ],
    "school_class_accounts": [
        row("GET", "own class", "302 403 403 403 403 403 403 200 404 403"),
        row("POST", "own class", "302 403 403 403 403 403 403 200 404 403", lambda w: {"names": "Léa Martin"}),
        row(
            "POST", "other school's class", "302 403 403 403 403 403 403 404 200 403", lambda w: {"names": "Léa Martin"}
        ),
    ],
    "school_class_passwords": [
        row("GET", "own class", "302 403 403 403 403 403 403 200 404 403"),
        row("POST", "own class", "302 403 403 403 403 403 403 200 404 403"),
        row("POST", "other school's class", "302 403 403 403 403 403 403 404 200 403"),
    ],
    "school_people": [row("GET", "-", "302 403 403 403 403 403 403 200 200 403")],
    "school_staff_new": [
        row("GET", "-", "302 403 403 403 403 403 403 200 200 403"),
        row(
            "POST",
            "-",
            "302 403 403 403 403 403 403 200 200 403",
            lambda w: {"username": "new.teacher", "first_name": "Marie", "last_name": "Durand"},
        ),
    ],
    "school_person": [
        row("GET", "student", "302 403 403 403 403 403 403 200 404 403"),
        row("GET", "other school's student", "302 403 403 403 403 403 403 404 200 403"),
    ],
    "school_person_deactivate": [
        row("POST", "student", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's student", "302 403 403 403 403 403 403 404 302 403"),
    ],
    "school_person_reactivate": [
        row("POST", "student", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's student", "302 403 403 403 403 403 403 404 302 403"),
    ],
    "school_person_password": [
        row("POST", "student", "302 403 403 403 403 403 403 200 404 403"),
        row("POST", "other school's student", "302 403 403 403 403 403 403 404 200 403"),
    ],
    "school_person_export": [
        row("GET", "student", "302 403 403 403 403 403 403 200 404 403"),
        row("GET", "other school's student", "302 403 403 403 403 403 403 404 200 403"),
    ],
    "school_person_delete": [
        row("GET", "student", "302 403 403 403 403 403 403 200 404 403"),
        row("POST", "student", "302 403 403 403 403 403 403 302 404 403", lambda w: {"confirm_username": "student"}),
        row(
            "POST",
            "other school's student",
            "302 403 403 403 403 403 403 404 302 403",
            lambda w: {"confirm_username": "foreignstudent"},
        ),
    ],
    "school_roster": [
        row("GET", "-", "302 403 403 403 403 403 403 200 200 403"),
        row("POST", "-", "302 403 403 403 403 403 403 200 200 403", roster_file),
    ],
    "school_roster_confirm": [
        row(
            "POST",
            "-",
            "302 403 403 403 403 403 403 200 200 403",
            lambda w: {"roster": "student_number,first_name,last_name,class\n77,Léa,Martin,Maths 4e B\n"},
        ),
    ],
    "school_roster_export": [row("GET", "-", "302 403 403 403 403 403 403 200 200 403")],
    "school_audit": [row("GET", "-", "302 403 403 403 403 403 403 200 200 403")],
    "school_settings": [
        row("GET", "-", "302 403 403 403 403 403 403 200 200 403"),
        row("POST", "-", "302 403 403 403 403 403 403 302 302 403", lambda w: {"retention_days": 200}),
    ],
    # Safeguarding: urgent alerts for the class's reviewers and the designated staff
    # (school admins once an alert is escalated to them); the school admin's settings.
    "safeguarding_alerts": [row("GET", "-", "302 403 403 403 200 200 403 200 200 200")],
    "safeguarding_alert": [
        row("GET", "classmate's alert", "302 404 404 404 200 404 404 404 404 200"),
        row("GET", "stranger's alert", "302 404 404 404 404 200 404 404 404 404"),
    ],
    "safeguarding_alert_acknowledge": [
        row("POST", "classmate's alert", "302 404 404 404 302 404 404 404 404 302"),
        row("POST", "stranger's alert", "302 404 404 404 404 302 404 404 404 404"),
        row("GET", "classmate's alert", "302 405 405 405 405 405 405 405 405 405"),
    ],
    "safeguarding_alert_mark": [
        row(
            "POST", "classmate's alert", "302 404 404 404 302 404 404 404 404 302", lambda w: {"outcome": "false_alarm"}
        ),
        row(
            "POST", "stranger's alert", "302 404 404 404 404 302 404 404 404 404", lambda w: {"outcome": "false_alarm"}
        ),
    ],
    "school_safeguarding": [row("GET", "-", "302 403 403 403 403 403 403 200 200 403")],
    "school_safeguarding_contact_add": [
        row(
            "POST", "-", "302 403 403 403 403 403 403 302 302 403", lambda w: {"person": w.outsider.id, "title": "CPE"}
        ),
    ],
    "school_safeguarding_contact_remove": [
        row("POST", "own school's contact", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's contact", "302 403 403 403 403 403 403 404 302 403"),
    ],
    "school_safeguarding_contact_move": [
        row("POST", "own school's contact", "302 403 403 403 403 403 403 302 404 403", lambda w: {"direction": "up"}),
        row("POST", "other school's contact", "302 403 403 403 403 403 403 404 302 403", lambda w: {"direction": "up"}),
    ],
    "school_safeguarding_message": [
        row("POST", "-", "302 403 403 403 403 403 403 302 302 403", lambda w: {"language": "en", "text": "We care."}),
    ],
    "school_safeguarding_delay": [
        row("POST", "-", "302 403 403 403 403 403 403 302 302 403", lambda w: {"minutes": 3})
    ],
    "school_safeguarding_chat": [row("POST", "-", "302 403 403 403 403 403 403 302 302 403", lambda w: {"open": "0"})],
    # Training the school's model on its review decisions (issue 19): the school admin only.
    # The export redirects back with a message while the school has not agreed.
    "school_training": [
        row("GET", "-", "302 403 403 403 403 403 403 200 200 403"),
        row("POST", "-", "302 403 403 403 403 403 403 302 302 403", lambda w: {"consent": "1"}),
    ],
    "school_training_export": [row("GET", "-", "302 403 403 403 403 403 403 302 302 403")],
    "school_training_models": [
        row("POST", "-", "302 403 403 403 403 403 403 302 302 403", lambda w: {"action": "stop"})
    ],
    "school_safeguarding_examples": [row("GET", "-", "302 403 403 403 403 403 403 200 200 403")],
    "school_safeguarding_example_delete": [
        row("POST", "own school's example", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's example", "302 403 403 403 403 403 403 404 302 403"),
    ],
    # Signing in with a school's services: anyone may start; a callback without the
    # browser's own attempt is refused (403); the CAS server's sign-out POST needs its request.
    "identity_sign_in": [
        row("GET", "school's sign-in", "302 302 302 302 302 302 302 302 302 302"),
        row("POST", "school's sign-in", "405 405 405 405 405 405 405 405 405 405"),
    ],
    "identity_oidc_callback": [row("GET", "OIDC provider", "403 403 403 403 403 403 403 403 403 403")],
    "identity_cas_callback": [
        row("GET", "CAS service", "403 403 403 403 403 403 403 403 403 403"),
        row("POST", "CAS service", "400 400 400 400 400 400 400 400 400 400"),
    ],
    "identity_sign_in_methods": [row("GET", "-", "302 200 200 200 200 200 200 200 200 200")],
    # The LTI tool's addresses: public, and refusing what no platform signed.
    "identity_lti_jwks": [row("GET", "-", "200 200 200 200 200 200 200 200 200 200")],
    "identity_lti_register": [row("GET", "registration address", "403 403 403 403 403 403 403 403 403 403")],
    "identity_lti_login": [row("GET", "platform's login", "200 200 200 200 200 200 200 200 200 200")],
    "identity_lti_launch": [
        row("POST", "-", "403 403 403 403 403 403 403 403 403 403"),
        row("GET", "-", "405 405 405 405 405 405 405 405 405 405"),
    ],
    "identity_lti_class_choose": [
        row("POST", "-", "403 403 403 403 403 403 403 403 403 403", lambda w: {"token": "forged"}),
        row("GET", "-", "405 405 405 405 405 405 405 405 405 405"),
    ],
    # School admins: their own school's services and platforms only
    "identity_school_sign_in": [row("GET", "-", "302 403 403 403 403 403 403 200 200 403")],
    "identity_school_sign_in_add": [
        row(
            "POST",
            "-",
            "302 403 403 403 403 403 403 302 302 403",
            lambda w: {"protocol": "cas", "name": "ENT 2", "slug": "ent2", "server_url": "https://ent2.example/cas"},
        ),
        row("POST", "-", "302 403 403 403 403 403 403 302 302 403", lambda w: {"shared": w.oidc.id}),
    ],
    "identity_school_sign_in_rules": [
        row("GET", "school's sign-in", "302 403 403 403 403 403 403 200 404 403"),
        row("GET", "other school's sign-in", "302 403 403 403 403 403 403 404 200 403"),
        row("POST", "school's sign-in", "302 403 403 403 403 403 403 302 404 403", lambda w: {"enabled": "on"}),
    ],
    "identity_school_sign_in_test": [
        row("POST", "school's sign-in", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's sign-in", "302 403 403 403 403 403 403 404 302 403"),
    ],
    "identity_school_sign_in_remove": [
        row("POST", "school's sign-in", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's sign-in", "302 403 403 403 403 403 403 404 302 403"),
    ],
    "identity_school_platform_invite": [row("POST", "-", "302 403 403 403 403 403 403 302 302 403")],
    "identity_school_platform": [
        row("GET", "school's platform", "302 403 403 403 403 403 403 200 404 403"),
        row("GET", "other school's platform", "302 403 403 403 403 403 403 404 200 403"),
    ],
    "identity_school_platform_test": [
        row("POST", "school's platform", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's platform", "302 403 403 403 403 403 403 404 302 403"),
    ],
    "identity_school_platform_deployment": [
        row("POST", "school's deployment", "302 403 403 403 403 403 403 302 404 403", lambda w: {"active": "off"}),
        row(
            "POST", "other school's deployment", "302 403 403 403 403 403 403 404 302 403", lambda w: {"active": "off"}
        ),
    ],
    "identity_school_platform_remove": [
        row("POST", "school's platform", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's platform", "302 403 403 403 403 403 403 404 302 403"),
    ],
    "identity_school_course_sync": [
        row("POST", "school's course", "302 403 403 403 403 403 403 302 404 403"),
        row("POST", "other school's course", "302 403 403 403 403 403 403 404 302 403"),
    ],
}

# WebSocket routes: "yes" if the persona's socket is accepted.
#          anonymous student classmate stranger teacher other_teacher outsider school_admin other_admin reviewer
WS_MATRIX = {
    "ws_chat": [
        ("student's conversation", "no yes no no no no no no no no"),
        ("stranger's conversation", "no no no yes no no no no no no"),
    ],
    "ws_review": [("-", "no no no no yes yes no no no yes")],
    "ws_alerts": [("-", "no no no no yes yes no yes yes yes")],
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin" or pattern.namespace == "admin":
                continue  # the operator's Django admin at /operator/
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            if settings.STATIC_URL and route.lstrip("^/").startswith(settings.STATIC_URL.strip("/")):
                continue
            yield route, pattern.name


def http_routes() -> list[str]:
    return [name or f"(unnamed) {route}" for route, name in _walk(get_resolver().url_patterns)]


def ws_routes() -> list[str]:
    return [p.name or f"(unnamed) {p.pattern}" for p in websocket_urlpatterns]


def test_the_table_names_no_route_that_is_gone():
    assert sorted(set(MATRIX) - set(http_routes())) == []
    assert sorted(set(WS_MATRIX) - set(ws_routes())) == []


@pytest.fixture
def world(
    school,
    other_school,
    classroom,
    other_classroom,
    student,
    classmate,
    stranger_student,
    teacher,
    other_teacher,
    outsider,
    school_admin,
    other_admin,
    reviewer,
):
    cache.clear()  # the join-code throttle
    foreign_classroom = Classroom.objects.create(school=other_school, name="Maths 4e B")
    foreign_student = make_person("foreignstudent", other_school)
    Membership.objects.create(classroom=foreign_classroom, user=foreign_student, role=Membership.Role.STUDENT)
    foreign_teacher = make_person("foreignteacher", other_school)
    Membership.objects.create(classroom=foreign_classroom, user=foreign_teacher, role=Membership.Role.TEACHER)
    reply = draft(ask(student, classroom))
    stranger_reply = draft(ask(stranger_student, other_classroom))
    ask(foreign_student, foreign_classroom)
    alert = ask(classmate, classroom, "I want to kill myself").in_reply_to.safeguarding_alert
    stranger_alert = ask(stranger_student, other_classroom, "I want to kill myself").in_reply_to.safeguarding_alert
    examples = [
        SafeguardingExample.objects.create(school=s, label="ok", text="this homework is killing me", vector=b"")
        for s in (school, other_school)
    ]
    documents = [
        CourseDocument.objects.create(classroom=c, name="Chapter 4", filename="ch4.txt", kind="text", content=b"x")
        for c in (classroom, other_classroom)
    ]
    world = SimpleNamespace(
        document=documents[0],
        other_document=documents[1],
        alert=alert,
        stranger_alert=stranger_alert,
        contact=SafeguardingContact.objects.get(school=school),
        foreign_contact=SafeguardingContact.objects.get(school=other_school),
        example=examples[0],
        foreign_example=examples[1],
        school=school,
        other_school=other_school,
        classroom=classroom,
        other_classroom=other_classroom,
        foreign_classroom=foreign_classroom,
        foreign_student=foreign_student,
        reply=reply,
        conversation=reply.conversation,
        stranger_reply=stranger_reply,
        stranger_conversation=stranger_reply.conversation,
        anonymous=None,
        student=student,
        classmate=classmate,
        stranger_student=stranger_student,
        teacher=teacher,
        other_teacher=other_teacher,
        outsider=outsider,
        school_admin=school_admin,
        other_admin=other_admin,
        reviewer=reviewer,
    )
    add_identity_world(world)
    return world


def _ask(client: Client, world, name: str, case, persona: str) -> int:
    url = reverse(name, kwargs=TARGETS[case.target](world))
    client.cookies.clear()  # one client for all (a new one loads every middleware again)
    if getattr(world, persona) is not None:
        client.force_login(getattr(world, persona))
    data = case.data(world) if case.data else {}
    if case.method == "GET":
        return client.get(url).status_code
    if case.method == "POST":
        return client.post(url, data).status_code
    return client.generic(case.method, url).status_code


@pytest.mark.django_db
@pytest.mark.parametrize("name", http_routes())
def test_every_route_answers_each_persona_as_expected(name, world):
    if name not in MATRIX:
        pytest.fail(f"route {name} has no permission expectations: add it to MATRIX in {__name__}")
    wrong = []
    client = Client()
    for case in MATRIX[name]:
        for persona, expected in case.expected.items():
            savepoint = transaction.savepoint()
            cache.clear()
            try:
                status = _ask(client, world, name, case, persona)
            finally:
                transaction.savepoint_rollback(savepoint)
            if str(status) != expected:
                wrong.append(f"{case.method} {name} [{case.target}] as {persona}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def _ws_path(name: str, kwargs: dict) -> str:
    pattern = next(str(p.pattern) for p in websocket_urlpatterns if p.name == name)
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), pattern)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("name", ws_routes())
async def test_every_socket_accepts_only_the_expected_personas(name, world):
    if name not in WS_MATRIX:
        pytest.fail(f"route {name} has no permission expectations: add it to WS_MATRIX in {__name__}")
    wrong = []
    for target, expected in WS_MATRIX[name]:
        path = _ws_path(name, await sync_to_async(TARGETS[target])(world))
        for persona, answer in zip(PERSONAS, expected.split(), strict=True):
            communicator = await socket(path, getattr(world, persona))
            connected, _code = await communicator.connect(timeout=5)
            await communicator.disconnect()
            if connected != (answer == "yes"):
                wrong.append(f"{path} as {persona}: {'accepted' if connected else 'refused'}, expected {answer}")
    assert not wrong, "\n".join(wrong)
