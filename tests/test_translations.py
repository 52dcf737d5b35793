"""The interface is complete in French: every string translated, the catalogue up to date
with the code, the compiled .mo matching the .po, and the main pages free of English.

To update the catalogue after adding strings:

    python manage.py makemessages -l fr --no-location --ignore=.venv --ignore=var --ignore=static/vendor \
        --ignore=tests --ignore=bench
    # translate the new entries in locale/fr/LC_MESSAGES/django.po (no "fuzzy" left), then
    python manage.py compilemessages -l fr --ignore=.venv
"""

from __future__ import annotations

import gettext as gnu_gettext
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.urls import reverse

from tests.conftest import client_for
from tests.tutor.helpers import ask, draft, socket
from tutor import services

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
PO = LOCALE / "fr" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
# What makemessages reads: everything but these (and static/vendor).
NOT_SOURCE = {".git", ".venv", "var", "tests", "bench", "locale", "test-artifacts", "__pycache__", "node_modules"}


# --- A small .po reader (polib is not a dependency) ---------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    text = text.strip()
    assert text.startswith('"') and text.endswith('"'), text
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text[1:-1])


class Entry:
    def __init__(self):
        self.flags: set[str] = set()
        self.fields: dict[str, str] = {}
        self.line = 0

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return self.fields.get("msgctxt"), self.fields["msgid"], self.fields.get("msgid_plural")

    @property
    def translations(self) -> list[str]:
        return [v for k, v in sorted(self.fields.items()) if k.startswith("msgstr")]

    def __repr__(self):
        return f"line {self.line}: {self.fields.get('msgid')!r}"


def read_po(path: Path) -> tuple[Entry, list[Entry]]:
    """The header and the live entries (obsolete "#~" ones are left out)."""
    entries: list[Entry] = []
    entry, field = Entry(), None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines() + [""], start=1):
        line = line.strip()
        if not line:
            if "msgid" in entry.fields:
                entries.append(entry)
            entry, field = Entry(), None
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue  # comments, references, obsolete entries
        elif line.startswith('"'):
            entry.fields[field] += _unquote(line)
        else:
            field, _, value = line.partition(" ")
            entry.fields[field] = _unquote(value)
            entry.line = entry.line or number
    assert entries and entries[0].fields["msgid"] == "", f"{path} has no header"
    return entries[0], entries[1:]


# "%%(n)s": a {% translate %} string whose placeholder the page's script fills in.
_PLACEHOLDER = re.compile(r"%%\(\w+\)[sd]|%%|%\(\w+\)[sdrfi]|%[sdrfi]")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def catalogue() -> tuple[Entry, list[Entry]]:
    assert PO.exists(), "No French catalogue: run makemessages -l fr (see this module's docstring)."
    return read_po(PO)


# --- (a) Every entry translated, nothing fuzzy, placeholders kept ---------------------------


def test_every_entry_is_translated_and_none_is_fuzzy(catalogue):
    header, entries = catalogue
    assert "fuzzy" not in header.flags, "The .po header is still marked fuzzy."
    assert "Language: fr" in header.fields["msgstr"]
    assert "plural=(n > 1)" in header.fields["msgstr"], "French plural rule missing from the header."
    untranslated = [e for e in entries if not all(t.strip() for t in e.translations)]
    fuzzy = [e for e in entries if "fuzzy" in e.flags]
    assert not untranslated, f"{len(untranslated)} untranslated entries in {PO.name}: {untranslated[:20]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy entries in {PO.name} (check them, then drop the flag): {fuzzy[:20]}"
    plurals = [e for e in entries if "msgid_plural" in e.fields]
    assert all(len(e.translations) == 2 for e in plurals), "French needs msgstr[0] and msgstr[1]."


def test_translations_keep_their_placeholders(catalogue):
    _, entries = catalogue
    wrong = []
    for e in entries:
        wanted = placeholders(e.fields["msgid"]) | placeholders(e.fields.get("msgid_plural", ""))
        for text in e.translations:
            if placeholders(text) != wanted:
                wrong.append((e, text))
    assert not wrong, f"Placeholders differ between msgid and msgstr: {wrong[:10]}"


def test_gettext_accepts_the_catalogue():
    if not shutil.which("msgfmt"):
        pytest.skip("GNU gettext (msgfmt) is not installed")
    done = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", os.devnull, str(PO)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "untranslated" not in done.stderr and "fuzzy" not in done.stderr, done.stderr


def test_the_compiled_mo_matches_the_po(catalogue):
    """The .mo is what Django reads: compilemessages must have run after the last edit."""
    assert MO.exists(), "Run: python manage.py compilemessages -l fr --ignore=.venv"
    with MO.open("rb") as fp:
        compiled = gnu_gettext.GNUTranslations(fp)._catalog
    _, entries = catalogue
    stale = []
    for e in entries:
        ctxt, msgid, plural = e.key
        key = f"{ctxt}\x04{msgid}" if ctxt else msgid
        if plural:
            got = [compiled.get((key, i)) for i in range(2)]
            want = [e.fields["msgstr[0]"], e.fields["msgstr[1]"]]
        else:
            got, want = compiled.get(key), e.fields["msgstr"]
        if got != want:
            stale.append(e)
    assert not stale, f"django.mo is older than django.po; run compilemessages. Differs for: {stale[:10]}"


# --- (b) The catalogue is not stale: it holds exactly what makemessages extracts now -------


def test_the_catalogue_has_every_string_of_the_code(catalogue, tmp_path):
    """makemessages on a copy of the sources (so the real locale/ is never touched)."""
    if not shutil.which("xgettext"):
        pytest.skip("GNU gettext (xgettext) is not installed")
    copy = tmp_path / "src"
    copy.mkdir()
    for item in ROOT.iterdir():
        if item.name in NOT_SOURCE or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(
                item, copy / item.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "vendor", "*.mo", "*.po")
            )
        else:
            shutil.copy2(item, copy / item.name)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tutor.settings",  # the copy's settings: LOCALE_PATHS is inside the copy
        "TUTOR_VAR_DIR": str(tmp_path / "var"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("TUTOR_ENV", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "fr", "--keep-pot", "--ignore=static/vendor"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    _, extracted = read_po(copy / "locale" / "django.pot")
    _, entries = catalogue
    in_code = {e.key for e in extracted}
    in_catalogue = {e.key for e in entries}
    missing = sorted(in_code - in_catalogue, key=str)
    gone = sorted(in_catalogue - in_code, key=str)
    assert not missing, (
        f"{len(missing)} strings of the code are not in {PO.name}; run makemessages and translate them: {missing[:20]}"
    )
    assert not gone, f"{len(gone)} entries of {PO.name} are no longer in the code; run makemessages: {gone[:20]}"


def test_scripts_take_their_text_from_the_page():
    """The scripts read translated text from data-text-* attributes; were one to call
    gettext(), the djangojs catalogue would be needed too."""
    uses_gettext = [
        path.relative_to(ROOT)
        for path in (ROOT / "static").rglob("*.js")
        if "vendor" not in path.parts and re.search(r"\b(n|p)?gettext\(", path.read_text(encoding="utf-8"))
    ]
    if uses_gettext:
        assert (LOCALE / "fr" / "LC_MESSAGES" / "djangojs.po").exists(), f"{uses_gettext} call gettext()"


# --- (c) The main pages, in French -------------------------------------------------------


@pytest.fixture(scope="module")
def english_strings(catalogue) -> list[str]:
    """English interface strings that read differently in French: none may show on a French page."""
    _, entries = catalogue
    found = []
    for e in entries:
        for msgid, msgstr in ((e.fields["msgid"], e.translations[0]), (e.fields.get("msgid_plural"), None)):
            if not msgid or "%" in msgid or " " not in msgid.strip() or msgid == msgstr:
                continue
            found.append(msgid)
    return found


def page_text(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.content.decode())


def assert_french(text: str, english_strings: list[str], *, present: list[str], absent: list[str]) -> None:
    assert '<html lang="fr">' in text
    for french in present:
        assert french in text, f"{french!r} missing from the French page"
    for english in absent:
        assert english not in text, f"{english!r} (English) on the French page"
    leaked = [s for s in english_strings if s in text]
    assert not leaked, f"English interface strings on a French page: {leaked}"


def speaks_french(*people):
    for person in people:
        person.language = "fr"
        person.save(update_fields=["language"])


@pytest.mark.django_db
def test_login_page_in_french_from_the_language_cookie(client, english_strings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    text = page_text(client.get(reverse("login")))
    assert_french(
        text,
        english_strings,
        present=["Se connecter", "Identifiant", "Mot de passe", "Nouvel élève"],
        absent=["Sign in", "Username", "Password", "Forgot your password"],
    )


@pytest.mark.django_db
def test_login_page_in_french_from_the_browser(client, english_strings):
    text = page_text(client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5"))
    assert_french(text, english_strings, present=["Se connecter"], absent=["Sign in"])


@pytest.mark.django_db
def test_a_failed_login_says_so_in_french(client, student):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    text = html.unescape(client.post(reverse("login"), {"username": "student", "password": "wrong"}).content.decode())
    assert "L'identifiant et le mot de passe ne correspondent pas" in text
    assert "didn't match" not in text


@pytest.mark.django_db
def test_sign_up_page_in_french(client, english_strings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    text = page_text(client.get(reverse("sign_up")))
    assert_french(
        text,
        english_strings,
        present=["S'inscrire", "Code de classe donné par votre professeur", "Créer mon compte"],
        absent=["Sign up", "Create my account", "Join code from your teacher"],
    )


@pytest.mark.django_db
def test_student_pages_in_french(student, classroom, english_strings):
    speaks_french(student)
    client = client_for(student)
    text = page_text(client.get(reverse("student_classes")))
    assert_french(
        text,
        english_strings,
        present=["Mes classes", "Choisissez une classe pour poser une question.", "Se déconnecter"],
        absent=["My classes", "Sign out"],
    )
    text = page_text(client.get(reverse("classroom", args=[classroom.id])))
    assert_french(text, english_strings, present=["Poser une nouvelle question"], absent=["Ask a new question"])


@pytest.mark.django_db
def test_chat_in_french(student, classroom, english_strings):
    speaks_french(student)
    conversation = services.conversation_start(student=student, classroom=classroom)
    text = page_text(client_for(student).get(reverse("conversation", args=[conversation.id])))
    assert_french(
        text,
        english_strings,
        present=[
            "Posez votre question",
            "Envoyer",
            'data-text-reviewing="Votre professeur relit la réponse…"',
            'data-text-chars-left="Caractères restants\u00a0: %(n)s"',  # the script fills in %(n)s
            'data-text-eta="Réponse habituellement en %(time)s environ"',
        ],
        absent=["Ask your question", "Type your question", "Your teacher is reviewing", "Connection lost"],
    )


@pytest.mark.django_db
def test_review_queue_in_french(teacher, student, classroom, english_strings):
    speaks_french(teacher)
    draft(ask(student, classroom, "Qu'est-ce qu'un nombre premier ?"), "Quels nombres divisent 7 ?")
    text = page_text(client_for(teacher).get(reverse("review_queue")))
    assert_french(
        text,
        english_strings,
        present=[
            "File de relecture",
            "Brouillon de réponse",
            "Approuver",
            "Rejeter…",
            "Régénérer…",
            'data-text-to-review-other="%(n)s brouillons à relire"',
            'data-text-words-one="%(n)s mot"',
        ],
        absent=["Review queue", "Draft reply", "Approve", "Regenerate", "drafts to review"],
    )


@pytest.mark.django_db
def test_school_admin_home_in_french(school_admin, classroom, english_strings):
    speaks_french(school_admin)
    text = page_text(client_for(school_admin).get(reverse("school_home")))
    assert_french(
        text,
        english_strings,
        present=["Créer la classe", "Journal d'activité", "Importer une liste d'élèves", "Matière", "Active"],
        absent=["Create the class", "Audit log", "Import a roster", "Subject"],
    )


@pytest.mark.django_db
def test_school_people_and_class_pages_in_french(school_admin, teacher, student, classroom, english_strings):
    speaks_french(school_admin)
    client = client_for(school_admin)
    text = page_text(client.get(reverse("school_people")))
    assert_french(text, english_strings, present=["Trouver une personne", "Actif"], absent=["Find a person"])
    text = page_text(client.get(reverse("school_class", args=[classroom.id])))
    assert_french(
        text,
        english_strings,
        present=["Professeurs", "Élèves", "Affecter un professeur", "Relecteur"],
        absent=["Assign a teacher", "Reviewer"],
    )
    text = page_text(client.get(reverse("school_class_accounts", args=[classroom.id])))
    assert_french(text, english_strings, present=["Par exemple «\u00a0Léa Martin\u00a0»"], absent=["For example"])


@pytest.mark.django_db
def test_teacher_class_settings_in_french(teacher, classroom, english_strings):
    speaks_french(teacher)
    text = page_text(client_for(teacher).get(reverse("teach_class", args=[classroom.id])))
    assert_french(
        text,
        english_strings,
        present=["Code de classe", "Le tuteur de la classe", "Consignes du tuteur", "Enregistrer"],
        absent=["Join code", "The class's tutor", "Save"],
    )


@pytest.mark.django_db
def test_join_page_in_french(outsider, english_strings):
    speaks_french(outsider)
    text = page_text(client_for(outsider).get(reverse("join_class")))
    assert_french(
        text,
        english_strings,
        present=["Rejoindre une classe", "Tapez le code que votre professeur vous a donné."],
        absent=["Join a class", "Type the code"],
    )


@pytest.mark.django_db
def test_a_flash_message_in_french(teacher, classroom):
    speaks_french(teacher)
    client = client_for(teacher)
    response = client.post(reverse("teach_join_code_switch", args=[classroom.id]), {"enabled": "off"}, follow=True)
    text = page_text(response)
    assert "Code de classe désactivé." in text and "Join code turned off" not in text


@pytest.mark.django_db
def test_english_stays_english(student):
    text = page_text(client_for(student).get(reverse("student_classes")))
    assert '<html lang="en">' in text and "My classes" in text and "Mes classes" not in text


# --- The sockets answer in the person's language -----------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_socket_errors_in_the_students_language(student, classroom):
    await sync_to_async(speaks_french)(student)
    conversation = await sync_to_async(services.conversation_start)(student=student, classroom=classroom)
    chat = await socket(f"/ws/chat/{conversation.id}/", student)
    assert (await chat.connect())[0]
    try:
        await chat.send_to(text_data="not json")
        answer = await chat.receive_json_from(timeout=5)
        assert answer["message"] == "Cette trame n'est pas du JSON valide."
        # Raised in the database thread: the language follows the call there.
        await chat.send_json_to({"type": "ask", "text": "   ", "client_id": "empty"})
        answer = await chat.receive_json_from(timeout=5)
        assert answer["message"] == "Votre message est vide."
    finally:
        await chat.disconnect()
