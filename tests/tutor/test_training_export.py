"""Teachers' review decisions exported as training data (issue 19): one row per decision
kind, names gone, only with the school's consent, only what retention keeps, only by the
school's admin."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from classrooms.models import AuditEntry, Classroom, School
from tests.tutor.helpers import ask, draft
from tutor import services
from tutor.checks import language_instruction
from tutor.models import Conversation
from tutor.training.dataset import export_reviews, is_substantive

DRAFT = "Sam, a prime number has exactly two divisors: one and itself. Can you list the divisors of 7?"


def _consent(school):
    School.objects.filter(pk=school.pk).update(training_consent=True)
    school.refresh_from_db()


def _one_of_each(student, classroom, teacher):
    """Five decided replies: as drafted, a real edit, a typo fix, a teacher's reply, a rejection."""
    decide = [
        lambda r: services.reply_approve(reply=r, reviewer=teacher),
        lambda r: services.reply_approve(
            reply=r, reviewer=teacher, text="Théo here: which whole numbers divide 7 without a remainder?"
        ),
        lambda r: services.reply_approve(
            reply=r, reviewer=teacher, text=DRAFT.replace("divisors:", "divisors :").upper()
        ),
        lambda r: services.reply_reject(reply=r, reviewer=teacher, teacher_text="Let's see it together tomorrow, Sam."),
        lambda r: services.reply_reject(reply=r, reviewer=teacher),
    ]
    replies = []
    for i, decision in enumerate(decide):
        reply = draft(
            ask(student, classroom, f"Question {i}: I am Sam, what is a prime? (I log in as student, sam@example.org)"),
            DRAFT,
        )
        decision(reply)
        replies.append(reply)
    return replies


def test_it_exports_a_row_for_each_decision_kind_with_names_scrubbed(school, classroom, teacher, student):
    _consent(school)
    Classroom.objects.filter(pk=classroom.pk).update(
        tutor_instructions="Théo's class: guide the student with questions, never give the answer."
    )
    _one_of_each(student, classroom, teacher)
    export = export_reviews(school=school)
    dpo, kto, sft = export.rows["dpo.jsonl"], export.rows["kto.jsonl"], export.rows["sft.jsonl"]
    # The real edit and the teacher's reply are preferences; the typo fix is not.
    assert [row["chosen"][0]["content"] for row in dpo] == [
        "[name] here: which whole numbers divide 7 without a remainder?",
        "Let's see it together tomorrow, [name].",
    ]
    assert all(row["rejected"][0]["content"].startswith("[name], a prime number") for row in dpo)
    assert [row["label"] for row in kto] == [True, False, True, True, False, True, False]
    assert len(sft) == 4
    prompt = dpo[0]["prompt"]
    assert prompt[0]["role"] == "system" and "Mathematics" in prompt[0]["content"]
    # The username "student" is the word student too: the instructions keep it, not the name.
    assert prompt[0]["content"].startswith("[name]'s class: guide the student with questions")
    assert language_instruction("en") in prompt[0]["content"]  # as the worker's prompt said it
    assert prompt[-1] == {
        "role": "user",
        "content": "Question 1: I am [name], what is a prime? (I log in as [name], [email])",
    }
    everything = "".join(export.jsonl(name) for name in export.rows)
    for said in ("Sam", "Théo", "sam@example.org"):
        assert said not in everything
    assert "(I log in as [name], [email])" in everything  # the username, and an address
    assert '"id"' not in everything and "reviewed_by" not in everything
    card = export.card()
    assert card["counts"] == {"dpo.jsonl": 2, "kto.jsonl": 7, "sft.jsonl": 4}
    assert card["decisions"] == {"as_drafted": 1, "edited": 2, "rejected": 1, "teacher_reply": 1}
    assert card["date_range"] == [timezone.localdate().isoformat()] * 2
    assert list(card["drafting_models"].values()) == [5]


def test_a_typo_or_punctuation_fix_is_not_substantive():
    assert not is_substantive("What divides 7?", "what  divides 7 ?!")
    assert not is_substantive("Which numbers divide seven exactly?", "Which numbers divides seven exactly?")
    assert is_substantive("Which numbers divide seven exactly?", "Which whole numbers divide seven without remainder?")


def test_no_export_without_the_schools_consent(school, classroom, teacher, student, tmp_path):
    _one_of_each(student, classroom, teacher)
    with pytest.raises(CommandError, match="has not agreed"):
        call_command("export_reviews", school=school.pk, out=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_deleted_and_expired_conversations_are_gone_from_the_export(school, classroom, teacher, student, tmp_path):
    _consent(school)
    replies = _one_of_each(student, classroom, teacher)
    Conversation.objects.filter(pk=replies[0].conversation_id).delete()
    # Past the retention period, not yet deleted by the hourly task.
    Conversation.objects.filter(pk=replies[1].conversation_id).update(
        updated_at=timezone.now() - timedelta(days=school.retention_days + 1)
    )
    call_command("export_reviews", school=school.pk, out=str(tmp_path), stdout=io.StringIO())
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["decisions"] == {"edited": 1, "rejected": 1, "teacher_reply": 1}
    assert "whole numbers" not in (tmp_path / "dpo.jsonl").read_text()
    assert (tmp_path / "README.md").read_text().startswith("# Dataset card")


def test_the_school_admin_turns_it_on_and_downloads(as_user, school, classroom, teacher, student, school_admin):
    _one_of_each(student, classroom, teacher)
    client = as_user(school_admin)
    page = client.get("/school/training/")
    assert "names and usernames of your school" in page.content.decode() and b"Download" not in page.content
    assert client.get("/school/training/export/").status_code == 302  # refused: not on yet
    client.post("/school/training/", {"consent": "1"})
    assert AuditEntry.objects.filter(action="school.training_on").count() == 1
    response = client.get("/school/training/export/", {"classroom": classroom.pk})
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["README.md", "card.json", "dpo.jsonl", "kto.jsonl", "sft.jsonl"]
    assert len(archive.read("kto.jsonl").decode().splitlines()) == 7
    assert AuditEntry.objects.filter(action="training.export").count() == 1


def test_another_schools_admin_gets_404_for_a_class_of_this_school(as_user, classroom, other_admin):
    School.objects.filter(pk=other_admin.school_id).update(training_consent=True)
    response = as_user(other_admin).get("/school/training/export/", {"classroom": classroom.pk})
    assert response.status_code == 404
