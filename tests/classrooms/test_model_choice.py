"""The model a school chooses: the deployment declares models, the school admin sets the
default and which others classes may use, a teacher picks one per class."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from classrooms import selectors, services
from classrooms.models import AuditEntry
from tests.tutor.helpers import ask
from tutor.model_settings import read_models

LOCAL = {"BACKEND": "transformers", "MODEL": "", "MAX_BATCH": 32, "MAX_NEW_TOKENS": 160, "CACHE_DIR": "/tmp/x"}
DECLARED = [
    {"key": "local", "label": "Local, fast, weak", "backend": "fake"},
    {
        "key": "academie",
        "label": {"en": "Académie server — Mistral Small", "fr": "Serveur de l'académie — Mistral Small"},
        "backend": "openai",
        "url": "https://llm.example.org/v1",
        "model": "mistral-small",
        "concurrency": 16,
        "repetition_penalty": 1.1,
    },
    {"key": "lab", "label": "Lab PC (Ollama)", "backend": "openai", "url": "http://10.0.0.5:11434/v1"},
]


@pytest.fixture
def three_models(settings):
    settings.TUTOR_MODELS = read_models(LOCAL, {"TUTOR_MODELS": json.dumps(DECLARED)})
    return settings.TUTOR_MODELS


def test_with_nothing_set_there_is_one_local_model_from_the_tutor_model_settings():
    models = read_models(LOCAL, {})
    assert [m["key"] for m in models] == ["local"]
    assert models[0]["config"] == LOCAL
    assert str(models[0]["label"]) == "Small model on this server (fast, often wrong)"


def test_models_come_from_a_json_file_with_engine_settings_in_capitals(tmp_path):
    path = tmp_path / "models.json"
    path.write_text(json.dumps([DECLARED[1], {**DECLARED[0], "default": True}]))
    models = read_models(LOCAL, {"TUTOR_MODELS_FILE": str(path)})
    assert [m["key"] for m in models] == ["local", "academie"]  # the default first
    config = models[1]["config"]
    assert config["BASE_URL"] == "https://llm.example.org/v1" and config["MODEL"] == "mistral-small"
    assert config["MAX_BATCH"] == 16 and config["REPETITION_PENALTY"] == 1.1
    assert config["MAX_NEW_TOKENS"] == 160  # inherited from TUTOR_MODEL_*


@pytest.mark.parametrize(
    "declared, says",
    [
        ("[{", "not valid JSON"),
        ("[]", "declare a list of models"),
        ('[{"key": "a b", "label": "x", "backend": "fake"}]', "needs a key"),
        ('[{"key": "a", "backend": "fake"}]', "needs a label"),
        ('[{"key": "a", "label": "x", "backend": "llamafile"}]', "backend must be one of openai, transformers, fake"),
        ('[{"key": "a", "label": "x", "backend": "openai"}]', "needs the server's url"),
        ('[{"key": "a", "label": "x", "backend": "fake"}, {"key": "a", "label": "y", "backend": "fake"}]', "twice: a"),
        ('[{"key": "a", "label": "x", "backend": "fake", "concurrency": 0}]', "max_batch must be a whole number"),
    ],
)
def test_bad_model_settings_stop_the_start_with_what_to_fix(declared, says):
    with pytest.raises(ImproperlyConfigured, match=says):
        read_models(LOCAL, {"TUTOR_MODELS": declared})


@pytest.mark.django_db
def test_a_new_school_drafts_with_the_deployments_default_and_teachers_see_no_choice(
    teacher, classroom, as_user, three_models
):
    assert selectors.classroom_model(classroom) == "local"
    assert selectors.school_allowed_models(classroom.school) == ["local"]
    page = as_user(teacher).get(reverse("teach_class", args=[classroom.id])).content.decode()
    assert "Drafts are written by: Local, fast, weak." in page
    assert 'name="model_key"' not in page


@pytest.mark.django_db
def test_school_admin_sets_the_default_and_the_models_classes_may_use(
    school_admin, school, classroom, as_user, three_models
):
    client = as_user(school_admin)
    page = client.get(reverse("school_settings")).content.decode()
    assert "Académie server — Mistral Small" in page and "Lab PC (Ollama)" in page
    response = client.post(
        reverse("school_settings"), {"retention_days": 365, "default_model": "academie", "allowed_models": ["local"]}
    )
    assert response.status_code == 302
    school.refresh_from_db()
    assert (school.default_model, school.allowed_models) == ("academie", ["local"])
    assert selectors.school_allowed_models(school) == ["academie", "local"]
    assert selectors.classroom_model(classroom) == "academie"
    entry = AuditEntry.objects.get(action="school.models")
    assert entry.details["to"] == {"default": "academie", "allowed": ["local"]}


@pytest.mark.django_db
def test_teacher_picks_an_allowed_model_and_the_next_reply_records_it(
    teacher, student, school, classroom, as_user, three_models
):
    services.school_models_set(actor=_admin(school), school=school, default_model="local", allowed_models=["academie"])
    client = as_user(teacher)
    page = client.get(reverse("teach_class", args=[classroom.id])).content.decode()
    assert "The school&#x27;s default: Local, fast, weak" in page and "Académie server — Mistral Small" in page
    assert "Lab PC (Ollama)" not in page  # not allowed by the school
    response = client.post(
        reverse("teach_class", args=[classroom.id]), {**_settings(classroom), "model_key": "academie"}
    )
    assert response.status_code == 302
    classroom.refresh_from_db()
    assert classroom.model_key == "academie"
    assert ask(student, classroom).model_key == "academie"
    assert AuditEntry.objects.filter(action="class.model", details__to="academie").exists()


@pytest.mark.django_db
def test_a_model_the_school_does_not_allow_is_refused_with_a_clear_message(
    teacher, school, classroom, as_user, three_models
):
    services.school_models_set(actor=_admin(school), school=school, default_model="local", allowed_models=["academie"])
    response = as_user(teacher).post(
        reverse("teach_class", args=[classroom.id]), {**_settings(classroom), "model_key": "lab"}
    )
    assert response.status_code == 200
    assert "Your school does not allow this model for its classes" in response.content.decode()
    classroom.refresh_from_db()
    assert classroom.model_key == ""
    # The service refuses it too, whoever calls it.
    with pytest.raises(services.ActionRefused, match="does not allow the model “Lab PC \\(Ollama\\)”"):
        services.classroom_model_choose(actor=teacher, classroom=classroom, model_key="lab")


@pytest.mark.django_db
def test_a_class_whose_model_is_withdrawn_falls_back_to_the_schools_default(school, classroom, three_models):
    admin = _admin(school)
    services.school_models_set(actor=admin, school=school, default_model="local", allowed_models=["academie"])
    services.classroom_model_choose(actor=admin, classroom=classroom, model_key="academie")
    assert selectors.classroom_model(classroom) == "academie"
    services.school_models_set(actor=admin, school=school, default_model="lab", allowed_models=[])
    assert selectors.classroom_model(classroom) == "lab"


@pytest.mark.django_db
def test_a_school_admin_cannot_choose_a_model_that_is_not_declared(school, three_models):
    with pytest.raises(services.ActionRefused, match="No model “gpt-9” is set up"):
        services.school_models_set(actor=_admin(school), school=school, default_model="gpt-9", allowed_models=[])


@pytest.mark.django_db
def test_the_model_choice_is_refused_to_outsiders(
    classroom, other_teacher, student, other_admin, as_user, three_models
):
    for person in (other_teacher, student, other_admin):
        response = as_user(person).post(reverse("teach_class", args=[classroom.id]), {"model_key": "academie"})
        assert response.status_code in (403, 404)
    classroom.refresh_from_db()
    assert classroom.model_key == ""


@pytest.mark.django_db
def test_labels_are_shown_in_the_readers_language(three_models):
    from django.utils import translation

    with translation.override("fr"):
        assert selectors.model_label("academie") == "Serveur de l'académie — Mistral Small"
    with translation.override("en"):
        assert selectors.model_label("academie") == "Académie server — Mistral Small"


def _admin(school):
    from tests.conftest import make_person

    return make_person(f"admin{school.pk}", school, is_school_admin=True)


def _settings(classroom) -> dict:
    return {
        "subject": classroom.subject,
        "level": classroom.level,
        "reply_language": classroom.reply_language,
        "tutor_instructions": classroom.tutor_instructions,
        "max_reply_words": classroom.max_reply_words,
    }
