"""Reading a school's roster (CSV) into a preview: what an import would change, row by row.

The file is read and checked entirely before anything is written; services.roster_import
reads it again inside its transaction and applies it only if no row has an error.

Columns (header row required, any order; French names accepted): student_number,
first_name, last_name, class, and optionally email. One row per student and class: a
student in two classes has two rows with the same student number. An import adds and
updates; it never removes anyone from a class.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from classrooms.models import Classroom, Membership, School, User

ROSTER_MAX_ROWS = 1000
ROSTER_MAX_BYTES = 512 * 1024

REQUIRED_COLUMNS = ("student_number", "first_name", "last_name", "class")
OPTIONAL_COLUMNS = ("email",)
COLUMN_LABELS = {
    "student_number": gettext_lazy("student number"),
    "first_name": gettext_lazy("first name"),
    "last_name": gettext_lazy("last name"),
    "class": gettext_lazy("class"),
    "email": gettext_lazy("e-mail"),
}
HEADER_ALIASES = {
    "student_number": "student_number",
    "student_no": "student_number",
    "student_id": "student_number",
    "number": "student_number",
    "numero": "student_number",
    "numero_eleve": "student_number",
    "ine": "student_number",
    "first_name": "first_name",
    "firstname": "first_name",
    "given_name": "first_name",
    "prenom": "first_name",
    "last_name": "last_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "nom": "last_name",
    "nom_de_famille": "last_name",
    "class": "class",
    "classroom": "class",
    "class_name": "class",
    "classe": "class",
    "email": "email",
    "e_mail": "email",
    "mail": "email",
    "courriel": "email",
}
MAX_LENGTHS = {"student_number": 50, "first_name": 150, "last_name": 150, "class": 200, "email": 254}

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(value: str) -> bool:
    return bool(value) and value.startswith(FORMULA_STARTS)


def neutralise_cell(value: str) -> str:
    """A value safe to put in a spreadsheet cell: a leading formula character is quoted."""
    value = "" if value is None else str(value)
    return "'" + value if looks_like_formula(value) else value


class RosterFileError(Exception):
    """The file as a whole cannot be read; nothing in it is used."""


@dataclass
class RosterRow:
    line: int  # the line in the file, as a spreadsheet numbers it (header = 1)
    student_number: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    class_name: str = ""
    classroom: Classroom | None = None
    person: User | None = None
    errors: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # fields of an existing person this row changes
    is_new_person: bool = False
    enrols: bool = False  # adds the person to the class

    @property
    def action(self) -> str:
        if self.errors:
            return "error"
        if self.is_new_person:
            return "new"
        if self.changes:
            return "update"
        if self.enrols:
            return "enrol"
        return "unchanged"

    @property
    def action_label(self) -> str:
        return {
            "error": _("Error"),
            "new": _("New student"),
            "update": _("Update: %(fields)s") % {"fields": ", ".join(self.changes)},
            "enrol": _("Add to the class"),
            "unchanged": _("No change"),
        }[self.action]


@dataclass
class RosterPreview:
    rows: list[RosterRow] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    has_email_column: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.file_errors and not any(row.errors for row in self.rows)

    @property
    def error_rows(self) -> list[RosterRow]:
        return [row for row in self.rows if row.errors]

    @property
    def changes_anything(self) -> bool:
        return any(row.action in ("new", "update", "enrol") for row in self.rows)

    def count(self, action: str) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def counts(self) -> dict[str, int]:
        return {a: self.count(a) for a in ("new", "update", "enrol", "unchanged", "error")}


def _header_key(name: str) -> str:
    name = unicodedata.normalize("NFKD", name.strip().lower())
    name = "".join(ch for ch in name if not unicodedata.combining(ch))
    return "_".join("".join(ch if ch.isalnum() else " " for ch in name).split())


def _decode(data: bytes) -> str:
    if len(data) > ROSTER_MAX_BYTES:
        raise RosterFileError(
            _("The file is too large (at most %(kb)d KB). Split it into several files.")
            % {"kb": ROSTER_MAX_BYTES // 1024}
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterFileError(
            _("The file is not UTF-8 text. In your spreadsheet, save it as “CSV UTF-8”, then upload it again.")
        ) from None
    if "\x00" in text:
        raise RosterFileError(_("This is not a CSV text file. Save the roster as “CSV UTF-8”."))
    if not text.strip():
        raise RosterFileError(_("The file is empty."))
    return text.lstrip("\r\n")


def _delimiter(first_line: str) -> str:
    # Spreadsheets in French save CSV with semicolons; pick what the header uses most.
    return max((",", ";", "\t"), key=first_line.count)


def _read_rows(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    first_line = text.splitlines()[0] if text.splitlines() else ""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line), strict=False)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise RosterFileError(_("The file has no header row.")) from None
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= ROSTER_MAX_ROWS:
                raise RosterFileError(
                    _("The file has more than %(max)d rows. Import at most %(max)d students at a time.")
                    % {"max": ROSTER_MAX_ROWS}
                )
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise RosterFileError(
            _("The file is not valid CSV (line %(line)d): %(error)s") % {"line": reader.line_num, "error": exc}
        ) from None
    return header, rows


def _columns(header: list[str]) -> dict[str, int]:
    """Column name → index; refuses unknown, missing and repeated columns."""
    columns: dict[str, int] = {}
    unknown, repeated = [], []
    for index, name in enumerate(header):
        key = HEADER_ALIASES.get(_header_key(name))
        if key is None:
            if name.strip():
                unknown.append(name.strip()[:40])
            continue
        if key in columns:
            repeated.append(name.strip()[:40])
        columns[key] = index
    expected = ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
    if unknown:
        raise RosterFileError(
            _("Unknown column(s): %(columns)s. The columns are: %(expected)s.")
            % {"columns": ", ".join(neutralise_cell(u) for u in unknown), "expected": expected}
        )
    if repeated:
        raise RosterFileError(_("Repeated column(s): %(columns)s.") % {"columns": ", ".join(repeated)})
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise RosterFileError(
            _("Missing column(s): %(columns)s. The first row must name the columns: %(expected)s.")
            % {"columns": ", ".join(missing), "expected": expected}
        )
    return columns


def _row(line: int, cells: list[str], columns: dict[str, int], width: int) -> RosterRow:
    row = RosterRow(line=line)
    if len(cells) != width:
        row.errors.append(_("This row has %(n)d cells; the header has %(width)d.") % {"n": len(cells), "width": width})
        return row
    values = {key: cells[index].strip() for key, index in columns.items()}
    row.student_number = values["student_number"]
    row.first_name = values["first_name"]
    row.last_name = values["last_name"]
    row.class_name = values["class"]
    row.email = values.get("email", "")
    refused = set()
    for key, value in values.items():
        label = COLUMN_LABELS[key]
        if key in REQUIRED_COLUMNS and not value:
            row.errors.append(_("The %(column)s is missing.") % {"column": label})
        elif looks_like_formula(value):
            refused.add(key)
            row.errors.append(
                _("The %(column)s starts with “%(char)s”, which a spreadsheet would run as a formula.")
                % {"column": label, "char": value[:1].strip() or _("a tab")}
            )
            # Never show the formula back as it is.
            setattr(row, "class_name" if key == "class" else key, neutralise_cell(value))
        elif len(value) > MAX_LENGTHS[key]:
            refused.add(key)
            row.errors.append(
                _("The %(column)s is too long (at most %(max)d characters).")
                % {"column": label, "max": MAX_LENGTHS[key]}
            )
    if row.email and "email" not in refused:
        try:
            validate_email(row.email)
        except ValidationError:
            row.errors.append(_("“%(email)s” is not an e-mail address.") % {"email": row.email[:80]})
    return row


def roster_read(*, school: School, data: bytes) -> RosterPreview:
    """What importing `data` into `school` would do. Reads the database, writes nothing."""
    preview = RosterPreview()
    try:
        header, raw_rows = _read_rows(_decode(data))
        columns = _columns(header)
    except RosterFileError as exc:
        preview.file_errors.append(str(exc))
        return preview
    if not raw_rows:
        preview.file_errors.append(_("The file has a header but no students."))
        return preview
    preview.has_email_column = "email" in columns
    preview.rows = [_row(line, cells, columns, len(header)) for line, cells in raw_rows]
    _match(school, preview)
    return preview


def _match(school: School, preview: RosterPreview) -> None:
    """Find each row's class and person, and say what would change."""
    classes: dict[str, list[Classroom]] = {}
    for classroom in Classroom.objects.filter(school=school, archived=False):
        classes.setdefault(classroom.name.strip().casefold(), []).append(classroom)
    numbers = {row.student_number for row in preview.rows if row.student_number}
    people = {p.student_number: p for p in User.objects.filter(school=school, student_number__in=numbers)}
    staff = set(
        Membership.objects.filter(
            user__in=people.values(), role__in=(Membership.Role.TEACHER, Membership.Role.REVIEWER)
        ).values_list("user_id", flat=True)
    )
    enrolled = set(Membership.objects.filter(user__in=people.values()).values_list("user_id", "classroom_id"))
    first_row_of: dict[str, RosterRow] = {}
    seen_pairs: dict[tuple[str, int], int] = {}

    for row in preview.rows:
        if row.errors:
            continue
        found = classes.get(row.class_name.casefold(), [])
        if not found:
            row.errors.append(
                _("Unknown class “%(name)s”. Create the class first, or check its name.")
                % {"name": row.class_name[:80]}
            )
            continue
        if len(found) > 1:
            row.errors.append(_("Several classes are called “%(name)s”; rename one.") % {"name": row.class_name[:80]})
            continue
        row.classroom = found[0]

        first = first_row_of.get(row.student_number)
        if first is not None and (first.first_name, first.last_name, first.email) != (
            row.first_name,
            row.last_name,
            row.email,
        ):
            row.errors.append(
                _("Student number %(number)s is on row %(line)d with another name or e-mail.")
                % {"number": row.student_number, "line": first.line}
            )
            continue
        pair = (row.student_number, row.classroom.id)
        if pair in seen_pairs:
            row.errors.append(_("Duplicate of row %(line)d (same student, same class).") % {"line": seen_pairs[pair]})
            continue
        seen_pairs[pair] = row.line

        person = people.get(row.student_number)
        if person is not None and (person.is_school_admin or person.is_superuser or person.id in staff):
            row.errors.append(
                _("Student number %(number)s belongs to a staff account, not a student.")
                % {"number": row.student_number}
            )
            continue
        row.person = person
        if person is None:
            row.is_new_person = first is None  # a new student's further rows only add classes
            row.enrols = True
        else:
            row.enrols = (person.id, row.classroom.id) not in enrolled
            if first is None:
                if person.first_name != row.first_name:
                    row.changes.append(str(COLUMN_LABELS["first_name"]))
                if person.last_name != row.last_name:
                    row.changes.append(str(COLUMN_LABELS["last_name"]))
                if row.email and person.email != row.email:
                    row.changes.append(str(COLUMN_LABELS["email"]))
        if first is None:
            first_row_of[row.student_number] = row
