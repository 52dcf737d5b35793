"""The safeguarding classifier: how worrying a student's message is, locally, in any
language that has examples.

Behind a small interface (`Classifier`): `assess(text, school_examples=...)` returns an
`Assessment` (tier, category, the nearest examples), and `example_vector(text)` turns a
school's own example into what `assess` compares against. The default,
`PrototypeClassifier`, embeds the message with multilingual-e5-small (tutor.embeddings:
numpy and a small C engine, no torch, so it runs in the web process at asking time) and
compares it with labelled examples: the built-in ones in examples/*.txt, one file per
language, and the examples a school's reviewers added by marking alerts. A short lexicon
of explicit means and plans (the [means:...] sections) forces the urgent tier.

It only routes a message to people, sooner and louder; it never blocks a student nor
answers one (../shared/PITFALLS.md: such a classifier raises false alarms and confuses
self-harm with distress, so a person always looks). A school plugs in a stronger local
model by naming a class with the same two methods in TUTOR_SAFEGUARDING_CLASSIFIER.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

log = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).with_name("examples")

# Tiers, in the order of urgency.
NOTHING, CONCERN, URGENT = 0, 1, 2

# Categories a person reads on a card or an alert.
OK = "ok"
SELF_HARM = "self_harm"
ABUSE = "abuse"
VIOLENCE = "violence"
BULLYING = "bullying"
DISTRESS = "distress"
SEXUAL = "sexual"

CATEGORY_LABELS = {
    OK: _("Nothing worrying"),
    SELF_HARM: _("Self-harm or suicide"),
    ABUSE: _("Abuse"),
    VIOLENCE: _("Violence toward others"),
    BULLYING: _("Bullying or harassment"),
    DISTRESS: _("Distress"),
    SEXUAL: _("Sexual content"),
}
TIER_LABELS = {NOTHING: _("Nothing"), CONCERN: _("Concern"), URGENT: _("Urgent")}

# The classes of the example files: (category, tier). Violence splits by intent: a threat
# with intent or a plan is urgent, violence mentioned is a concern.
CLASSES = {
    "self_harm": (SELF_HARM, URGENT),
    "abuse": (ABUSE, URGENT),
    "threat": (VIOLENCE, URGENT),
    "violence": (VIOLENCE, CONCERN),
    "bullying": (BULLYING, CONCERN),
    "distress": (DISTRESS, CONCERN),
    "sexual": (SEXUAL, CONCERN),
    "ok": (OK, NOTHING),
}
# What a reviewer's "real concern" files a message under, per category.
CATEGORY_CLASS = {SELF_HARM: "self_harm", ABUSE: "abuse", VIOLENCE: "threat", BULLYING: "bullying"}
CATEGORY_CLASS |= {DISTRESS: "distress", SEXUAL: "sexual", OK: "ok"}

# Decision rule, set on the examples by leave-one-out (bench/safety.py --loo) before the
# benchmark set was scored. A class's score is the mean similarity of its TOP_K nearest
# examples; a school's own example counts with its own similarity.
TOP_K = 2
RISK_MARGIN = 0.005  # a risk class must score at least this much above "ok"
URGENT_SLACK = 0.02  # an urgent class this close to the best risk class wins (self-harm vs distress)
MIN_LETTERS = 2  # fewer letters than this (emoji, "???"): nothing to read
SEGMENT_CHARS = 220  # long messages are read in windows of about this many characters
MAX_SEGMENTS = 24


@dataclass(frozen=True)
class Neighbour:
    """One labelled example near the message."""

    text: str
    label: str  # a class of CLASSES
    similarity: float
    school: bool = False  # added by the school's reviewers


@dataclass(frozen=True)
class Assessment:
    tier: int
    category: str
    reason: str = "examples"  # "examples", "lexicon", "no words", "empty"
    score: float = 0.0  # how far the winning class stood above "ok"
    segment: str = ""  # the part of the message that decided
    neighbours: tuple[Neighbour, ...] = field(default_factory=tuple)

    @property
    def category_label(self) -> str:
        return str(CATEGORY_LABELS[self.category])

    @property
    def tier_label(self) -> str:
        return str(TIER_LABELS[self.tier])


@dataclass(frozen=True)
class SchoolExample:
    """An example a school's reviewers added (tutor.models.SafeguardingExample)."""

    text: str
    label: str
    vector: np.ndarray


class Classifier(Protocol):
    def assess(self, text: str, *, school_examples: Sequence[SchoolExample] = ()) -> Assessment: ...

    def example_vector(self, text: str) -> np.ndarray: ...


# Reading the example files.


@dataclass
class ExampleSet:
    texts: list[str]
    labels: list[str]
    means: list[tuple[re.Pattern, str]]  # (pattern, class)
    digest: str


def load_examples(directory: Path = EXAMPLES_DIR) -> ExampleSet:
    """Every *.txt file of `directory`: [class] sections of examples, [means:class]
    sections of lexicon patterns. Unknown sections are an error, so a typo cannot
    silently drop examples."""
    texts, labels, means = [], [], []
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.txt")):
        content = path.read_text(encoding="utf-8")
        digest.update(path.name.encode() + b"\0" + content.encode())
        section = None
        for number, raw in enumerate(content.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            heading = re.fullmatch(r"\[([a-z_:]+)\]", line)
            if heading:
                section = heading.group(1)
                name = section.removeprefix("means:")
                if name not in CLASSES or section == "means:ok":
                    raise ValueError(f"{path.name}:{number}: unknown section [{section}]")
                continue
            if section is None:
                raise ValueError(f"{path.name}:{number}: a line before any [section]")
            if section.startswith("means:"):
                means.append((re.compile(line), section.removeprefix("means:")))
            else:
                texts.append(line)
                labels.append(section)
    return ExampleSet(texts=texts, labels=labels, means=means, digest=digest.hexdigest()[:16])


# Normalising what students type.

_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_LEET_TOKEN = re.compile(r"[\w@$!]*[a-zA-Z][\w@$!]*")
_REPEATS = re.compile(r"(\w)\1{2,}")


def _unleet(token: str) -> str:
    """'k1ll' -> 'kill', 'mys3lf' -> 'myself'; '3x', 'x2' and '2nd' stay as they are."""
    letters = sum(c.isalpha() for c in token)
    leet = sum(c in "013457@$!" for c in token)
    if letters < 2 or not leet or len(token) < 3:
        return token
    core = token.rstrip("!")  # "help!!" keeps its exclamation marks as punctuation
    return core.translate(_LEET) + token[len(core) :]


def readable(text: str) -> str:
    """The message as the classifier reads it: no invisible characters, leetspeak
    decoded, long letter runs shortened ('dieeeee' -> 'die'), one space between words."""
    text = unicodedata.normalize("NFKC", text or "").replace("\x00", " ")
    text = _INVISIBLE.sub("", text)
    text = _LEET_TOKEN.sub(lambda m: _unleet(m.group(0)), text)
    text = _REPEATS.sub(r"\1", text)
    return " ".join(text.split())


def plain(text: str) -> str:
    """Lower case, no accents, one kind of apostrophe: what the lexicon matches."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.lower().replace("\u2019", "'").replace("`", "'")


_SENTENCE = re.compile(
    r"(?<=[.!?;…])\s+|\n+|\s+(?=(?:also|and also|btw|aussi|et puis|sinon|de toute fa[cç]on)\b)", re.I
)


def segments(text: str) -> list[str]:
    """The parts of a message read one by one, so that a cry for help inside a maths
    question is not averaged away: the whole message when it is short, and each
    sentence; long messages in windows of about SEGMENT_CHARS."""
    pieces = []
    for sentence in _SENTENCE.split(text):
        sentence = sentence.strip()
        while len(sentence) > SEGMENT_CHARS:
            cut = sentence.rfind(" ", 0, SEGMENT_CHARS)
            cut = cut if cut > SEGMENT_CHARS // 2 else SEGMENT_CHARS
            pieces.append(sentence[:cut])
            sentence = sentence[cut:].strip()
        if sentence and sentence not in pieces:  # a repeated sentence is read once
            pieces.append(sentence)
    # Too many pieces: merge neighbours into windows, so a long message costs at most
    # MAX_SEGMENTS embeddings and every word is still read.
    while len(pieces) > MAX_SEGMENTS:
        merged = []
        for i in range(0, len(pieces), 2):
            merged.append(" ".join(pieces[i : i + 2]))
        pieces = merged
    parts = [text] if len(text) <= 2 * SEGMENT_CHARS or len(pieces) == 1 else []
    parts += [p for p in pieces if len(pieces) > 1 and len(p.split()) >= 2]
    return parts or [text]


class PrototypeClassifier:
    """Nearest labelled examples per class, on multilingual-e5-small embeddings."""

    def __init__(self, directory: Path = EXAMPLES_DIR):
        self.directory = directory
        self._examples: ExampleSet | None = None
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    # Loading, once per process; the example vectors are cached on disk by content.

    def _ready(self) -> tuple[ExampleSet, np.ndarray]:
        with self._lock:
            if self._examples is None:
                examples = load_examples(self.directory)
                self._vectors = self._example_vectors(examples)
                self._examples = examples
        return self._examples, self._vectors

    def _example_vectors(self, examples: ExampleSet) -> np.ndarray:
        from tutor import embeddings

        cache = Path(settings.VAR_DIR) / f"safeguarding-examples-{examples.digest}.npy"
        if cache.exists():
            try:
                vectors = np.load(cache)
                if vectors.shape == (len(examples.texts), embeddings.DIMENSIONS):
                    return vectors
            except (OSError, ValueError):
                log.warning("the cached safeguarding examples at %s are unreadable; embedding them again", cache)
        vectors = embeddings.embed_queries([readable(t) for t in examples.texts])
        try:
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(cache)
        except OSError:
            log.warning("could not cache the safeguarding examples at %s", cache)
        return vectors

    def warm_up(self) -> None:
        """Load the model and the examples now rather than at the first message."""
        self._ready()
        self.example_vector("warm up")

    def example_vector(self, text: str) -> np.ndarray:
        from tutor import embeddings

        return embeddings.embed_queries([readable(text)])[0]

    # Assessing.

    def assess(self, text: str, *, school_examples: Sequence[SchoolExample] = ()) -> Assessment:
        from tutor import embeddings

        examples, vectors = self._ready()
        text = readable(text)
        if not text:
            return Assessment(tier=NOTHING, category=OK, reason="empty")
        lexicon = self._lexicon(text, examples)
        if sum(c.isalpha() for c in text) < MIN_LETTERS:
            return Assessment(tier=NOTHING, category=OK, reason="no words")
        parts = segments(text)
        part_vectors = embeddings.embed_queries(parts)
        school = [e for e in school_examples if e.label in CLASSES and e.vector.shape == (embeddings.DIMENSIONS,)]
        school_vectors = np.stack([e.vector for e in school]) if school else None
        best: Assessment | None = None
        for part, vector in zip(parts, part_vectors, strict=True):
            found = self._assess_part(part, vector, examples, vectors, school, school_vectors)
            if best is None or (found.tier, found.score) > (best.tier, best.score):
                best = found
        if lexicon is not None:
            category, _tier = CLASSES[lexicon]
            return Assessment(
                tier=URGENT,
                category=category,
                reason="lexicon",
                score=1.0,
                segment=best.segment,
                neighbours=best.neighbours,
            )
        return best

    def _lexicon(self, text: str, examples: ExampleSet) -> str | None:
        flat = plain(text)
        for pattern, label in examples.means:
            if pattern.search(flat):
                return label
        return None

    def _assess_part(
        self,
        part: str,
        vector: np.ndarray,
        examples: object,
        vectors: np.ndarray,
        school: object,
        school_vectors: object,
    ) -> Assessment:
        sims = vectors @ vector
        labels = np.array(examples.labels)
        scores: dict[str, float] = {}
        for label in CLASSES:
            mine = np.sort(sims[labels == label])[::-1][:TOP_K]
            scores[label] = float(mine.mean()) if len(mine) else -1.0
        neighbours = [
            Neighbour(text=examples.texts[i], label=examples.labels[i], similarity=float(sims[i]))
            for i in np.argsort(-sims)[:5]
        ]
        if school_vectors is not None:
            school_sims = school_vectors @ vector
            for example, sim in zip(school, school_sims, strict=True):
                scores[example.label] = max(scores[example.label], float(sim))
            order = np.argsort(-school_sims)[:3]
            neighbours += [
                Neighbour(text=school[i].text, label=school[i].label, similarity=float(school_sims[i]), school=True)
                for i in order
            ]
        neighbours.sort(key=lambda n: -n.similarity)
        risk = {label: s for label, s in scores.items() if label != "ok"}
        top = max(risk, key=risk.get)
        margin = risk[top] - scores["ok"]
        if margin < RISK_MARGIN:
            return Assessment(tier=NOTHING, category=OK, score=margin, segment=part, neighbours=tuple(neighbours[:5]))
        urgent = [label for label in risk if CLASSES[label][1] == URGENT and risk[label] >= risk[top] - URGENT_SLACK]
        if urgent:
            top = max(urgent, key=risk.get)
        category, tier = CLASSES[top]
        return Assessment(tier=tier, category=category, score=margin, segment=part, neighbours=tuple(neighbours[:5]))


_lexicon: ExampleSet | None = None


def lexicon_class(text: str) -> str | None:
    """The class of the first lexicon pattern the message matches, or None. Needs no
    model: the fallback when the classifier itself fails."""
    global _lexicon
    if _lexicon is None:
        _lexicon = load_examples()
    flat = plain(readable(text))
    return next((label for pattern, label in _lexicon.means if pattern.search(flat)), None)


_classifier: Classifier | None = None
_classifier_lock = threading.Lock()


def get_classifier() -> Classifier:
    """The classifier named by TUTOR_SAFEGUARDING_CLASSIFIER, one per process."""
    global _classifier
    with _classifier_lock:
        if _classifier is None:
            _classifier = import_string(settings.TUTOR_SAFEGUARDING_CLASSIFIER)()
    return _classifier
