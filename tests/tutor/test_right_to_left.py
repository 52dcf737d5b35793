"""A question in Arabic (or Hebrew, Persian, Urdu) reads right to left wherever it is shown,
with its numbers and formulae in place: every element that holds a person's text carries
dir="auto", so the browser takes the direction from the text itself. Without it, "ما هو
حل المعادلة 2x + 3 = 11؟" shows its 2 detached at the wrong end."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.tutor.helpers import ask, draft
from tutor import services

pytestmark = pytest.mark.django_db

QUESTION = "ما هو حل المعادلة 2x + 3 = 11؟"
ANSWER = "اطرح 3 من الطرفين: 2x = 8"
VOID = {"input", "br", "img", "meta", "link", "hr", "source", "col", "area", "base", "wbr", "track", "embed"}


class Directions(HTMLParser):
    """For each text in `wanted`: the dir of the nearest enclosing element that sets one."""

    def __init__(self, wanted):
        super().__init__()
        self.wanted, self.stack, self.found = wanted, [], {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("value"):
            self.record(attrs["value"], attrs.get("dir"))
        if tag not in VOID:
            self.stack.append(attrs.get("dir"))

    def handle_endtag(self, tag):
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self.lasttag == "title":
            return  # the window's title has no direction of its own
        nearest = next((d for d in reversed(self.stack) if d is not None), None)
        self.record(data, nearest)

    def record(self, data, direction):
        for text in self.wanted:
            if text in data:
                self.found.setdefault(text, []).append(direction)


def directions(html: str, *texts: str) -> dict[str, list]:
    parser = Directions(texts)
    parser.feed(html)
    return parser.found


def test_the_student_sees_right_to_left_text_in_its_own_direction(student, teacher, classroom, as_user):
    reply = draft(ask(student, classroom, QUESTION))
    services.reply_approve(reply=reply, reviewer=teacher, text=ANSWER)
    client = as_user(student)
    chat = client.get(reverse("conversation", args=[reply.conversation_id])).content.decode()
    found = directions(chat, "2x + 3 = 11", "2x = 8")
    assert found["2x + 3 = 11"] == ["auto", "auto"]  # the title and the question
    assert found["2x = 8"] == ["auto"]
    assert 'id="question" name="text" dir="auto"' in chat  # and what they type next
    listing = client.get(reverse("classroom", args=[classroom.id])).content.decode()
    assert directions(listing, "2x + 3")["2x + 3"] == ["auto"]  # the conversation's name


def test_the_teacher_reviews_right_to_left_text_in_its_own_direction(student, teacher, classroom, as_user):
    earlier = draft(ask(student, classroom, QUESTION))
    services.reply_approve(reply=earlier, reviewer=teacher, text=ANSWER)
    question, _ = services.question_ask(conversation=earlier.conversation, text="لماذا نطرح 3؟")
    draft(question.reply, text="لأن 3 + 3 - 3 = 3")
    queue = as_user(teacher).get(reverse("review_queue")).content.decode()
    found = directions(queue, "2x + 3 = 11", "2x = 8", "لماذا نطرح 3؟", "3 + 3 - 3 = 3")
    assert found == {
        "2x + 3 = 11": ["auto"],  # the conversation so far
        "2x = 8": ["auto"],
        "لماذا نطرح 3؟": ["auto"],  # the question
        "3 + 3 - 3 = 3": ["auto"],  # the draft, in the box the teacher edits
    }
    for box in ('name="text" class="draft" dir="auto"', 'name="instruction" dir="auto"'):
        assert box in queue
