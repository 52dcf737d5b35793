"""A/B of a fine-tuned model (issue 19): the school admin puts it on a share of new
drafts, each reply records which model drafted it, the page compares decisions per
model, and promotion and rollback are one click each."""

from __future__ import annotations

import json

import pytest

from classrooms.models import AuditEntry, Classroom
from classrooms.selectors import model_for_new_reply
from tests.tutor.helpers import ask, draft
from tutor import services
from tutor.model_settings import read_models

MODELS = [
    {"key": "local", "label": "SmolLM2 as shipped", "backend": "fake"},
    {"key": "school-v1", "label": "Our fine-tuned SmolLM2", "backend": "fake"},
]


@pytest.fixture
def two_models(settings):
    settings.TUTOR_MODELS = read_models({"MAX_BATCH": 4, "MAX_NEW_TOKENS": 40}, {"TUTOR_MODELS": json.dumps(MODELS)})


def test_the_admin_tries_promotes_and_rolls_back_a_model(
    two_models, as_user, school, classroom, student, teacher, school_admin
):
    client = as_user(school_admin)
    assert "Our fine-tuned SmolLM2" in client.get("/school/training/").content.decode()
    client.post("/school/training/models/", {"action": "trial", "model": "school-v1", "share": "100"})
    school.refresh_from_db()
    assert (school.trial_model, school.trial_share) == ("school-v1", 100)
    reply = ask(student, classroom)
    assert reply.model_key == "school-v1"  # the review card names it (Message.model_key)
    services.reply_approve(reply=draft(reply), reviewer=teacher, text="Which numbers divide 7, apart from 1?")
    page = client.get("/school/training/").content.decode()
    assert "Our fine-tuned SmolLM2</td><td>1</td><td>0%</td><td>100%</td><td>0%" in page
    client.post("/school/training/models/", {"action": "stop"})
    school.refresh_from_db()  # the class's school, as a request would read it
    assert ask(student, classroom, "And 9?").model_key == "local"
    client.post("/school/training/models/", {"action": "trial", "model": "school-v1", "share": "30"})
    client.post("/school/training/models/", {"action": "promote"})
    school.refresh_from_db()
    assert (school.default_model, school.trial_model, school.previous_default_model) == ("school-v1", "", "local")
    client.post("/school/training/models/", {"action": "rollback"})
    school.refresh_from_db()
    assert (school.default_model, school.previous_default_model) == ("local", "")
    actions = list(AuditEntry.objects.filter(action__startswith="school.model").values_list("action", flat=True))
    assert sorted(actions) == sorted(
        [
            "school.model_trial",
            "school.model_trial_stop",
            "school.model_trial",
            "school.model_promote",
            "school.model_rollback",
        ]
    )


def test_the_trial_takes_its_share_and_leaves_a_teachers_choice_alone(two_models, school, classroom):
    school.trial_model, school.trial_share = "school-v1", 25
    school.save()
    assert [model_for_new_reply(classroom, draw=d) for d in (0.0, 0.24, 0.25, 0.9)] == [
        "school-v1",
        "school-v1",
        "local",
        "local",
    ]
    school.allowed_models = ["school-v1"]
    school.save()
    chosen = Classroom.objects.create(school=school, name="Chose the model", model_key="school-v1")
    assert model_for_new_reply(chosen, draw=0.99) == "school-v1"


def test_a_bad_trial_is_refused_with_a_message(two_models, as_user, school, school_admin):
    client = as_user(school_admin)
    response = client.post(
        "/school/training/models/", {"action": "trial", "model": "local", "share": "20"}, follow=True
    )
    assert "already drafts the school" in response.content.decode()
    response = client.post(
        "/school/training/models/", {"action": "trial", "model": "school-v1", "share": "0"}, follow=True
    )
    assert "between 1 and 100" in response.content.decode()
    school.refresh_from_db()
    assert school.trial_model == ""
