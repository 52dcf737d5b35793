"""Getting students in, 1: a CSV roster. Preview, confirm, re-import, all or nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from classrooms import roster, services
from classrooms.models import AuditEntry, Classroom, Membership, User

ROSTER = (
    "student_number,first_name,last_name,email,class\n"
    "1001,Léa,Martin,lea@example.org,Maths 4e B\n"
    "1002,Hugo,Bernard,,Maths 4e B\n"
    "1002,Hugo,Bernard,,History 3e A\n"
    "1003,Inès,Petit,,History 3e A\n"
)


def upload(client, text: str | bytes, name: str = "roster.csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(reverse("school_roster"), {"file": SimpleUploadedFile(name, data, "text/csv")})


def confirm(client, text: str):
    return client.post(reverse("school_roster_confirm"), {"roster": text})


def snapshot(school):
    """Everything an import may touch, to compare before and after."""
    people = list(
        User.objects.filter(school=school)
        .order_by("id")
        .values_list("id", "username", "first_name", "last_name", "email", "student_number", "password")
    )
    places = list(
        Membership.objects.filter(classroom__school=school)
        .order_by("id")
        .values_list("user_id", "classroom_id", "role")
    )
    return people, places, AuditEntry.objects.count()


@pytest.fixture
def admin_client(school_admin, classroom, other_classroom, as_user):
    return as_user(school_admin)


@pytest.mark.django_db
def test_preview_shows_what_would_happen_and_changes_nothing(admin_client, school):
    before = snapshot(school)
    page = upload(admin_client, ROSTER)
    assert page.status_code == 200
    preview = page.context["preview"]
    assert preview.ok
    assert [row.action for row in preview.rows] == ["new", "new", "enrol", "new"]
    html = page.content.decode()
    assert "Confirm the import" in html and "Léa" in html
    assert snapshot(school) == before


@pytest.mark.django_db
def test_confirm_creates_students_enrols_them_and_prints_their_cards(admin_client, school, classroom, other_classroom):
    response = confirm(admin_client, ROSTER)
    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("no-store")
    lea = User.objects.get(school=school, student_number="1001")
    hugo = User.objects.get(school=school, student_number="1002")
    assert (lea.first_name, lea.last_name, lea.email) == ("Léa", "Martin", "lea@example.org")
    assert set(Membership.objects.filter(user=hugo).values_list("classroom_id", flat=True)) == {
        classroom.id,
        other_classroom.id,
    }
    cards = response.context["sheets"]
    assert sorted(name for name, _ in cards) == ["History 3e A", "Maths 4e B"]
    all_cards = [card for _, group in cards for card in group]
    assert len(all_cards) == 3  # one card a new student, in their first class
    lea_card = next(card for card in all_cards if card.username == lea.username)
    assert lea.check_password(lea_card.password)
    assert lea_card.password not in lea.password  # only the hash is stored
    entry = AuditEntry.objects.get(action="roster.import")
    assert entry.details == {"created": 3, "updated": 0, "enrolled": 4}


@pytest.mark.django_db
def test_reimporting_the_same_file_changes_nothing(admin_client, school):
    confirm(admin_client, ROSTER)
    before = snapshot(school)
    preview = upload(admin_client, ROSTER).context["preview"]
    assert [row.action for row in preview.rows] == ["unchanged"] * 4
    response = confirm(admin_client, ROSTER)
    assert response.status_code == 302
    assert snapshot(school) == before


@pytest.mark.django_db
def test_a_changed_row_updates_the_person(admin_client, school, other_classroom):
    confirm(admin_client, ROSTER)
    lea = User.objects.get(school=school, student_number="1001")
    changed = ROSTER.replace(
        "1001,Léa,Martin,lea@example.org,Maths 4e B", "1001,Léa,Martin-Roux,lea@example.org,History 3e A"
    )
    preview = upload(admin_client, changed).context["preview"]
    assert preview.rows[0].action == "update"
    assert preview.rows[0].enrols
    confirm(admin_client, changed)
    lea.refresh_from_db()
    assert lea.last_name == "Martin-Roux"
    assert Membership.objects.filter(user=lea, classroom=other_classroom).exists()
    assert User.objects.filter(school=school).count() == 5  # no new account: the number found her (+ the CPE)
    assert AuditEntry.objects.filter(action="roster.import").first().details == {
        "created": 0,
        "updated": 1,
        "enrolled": 1,
    }


@pytest.mark.django_db
def test_preview_lists_each_bad_row_and_offers_no_confirmation(admin_client, school):
    bad = (
        "numero;prenom;nom;classe\n"  # French headers, semicolons: accepted
        "2001;Léa;Martin;Maths 4e B\n"
        "2002;Hugo;;Maths 4e B\n"  # missing last name
        "2003;Inès;Petit;Chimie 1re\n"  # unknown class
        "2001;Léa;Martin;Maths 4e B\n"  # duplicate of row 2
        '2004;=HYPERLINK("http://evil");Doe;Maths 4e B\n'  # formula injection
        "2005;Tom;Durand\n"  # a cell short
    )
    page = upload(admin_client, bad)
    preview = page.context["preview"]
    assert not preview.ok
    errors = {row.line: " ".join(row.errors) for row in preview.rows if row.errors}
    assert set(errors) == {3, 4, 5, 6, 7}
    assert "last name is missing" in errors[3]
    assert "Unknown class" in errors[4]
    assert "Duplicate of row 2" in errors[5]
    assert "formula" in errors[6]
    assert "4 cells" in errors[7] or "3 cells" in errors[7]
    html = page.content.decode()
    assert "Confirm the import" not in html
    assert '"=HYPERLINK' not in html and ">=HYPERLINK" not in html


@pytest.mark.django_db
def test_a_failing_row_leaves_the_database_untouched(admin_client, school):
    before = snapshot(school)
    bad = ROSTER + "1004,Tom,Durand,,No such class\n"
    response = confirm(admin_client, bad)
    assert "Nothing was imported" in response.content.decode()
    assert snapshot(school) == before


@pytest.mark.django_db
def test_an_error_in_the_middle_of_applying_rolls_everything_back(
    school_admin, school, classroom, other_classroom, monkeypatch
):
    before = snapshot(school)
    real = services.username_new
    calls = []

    def fails_on_the_third(first, last):
        calls.append(first)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(first, last)

    monkeypatch.setattr(services, "username_new", fails_on_the_third)
    with pytest.raises(RuntimeError):
        services.roster_import(actor=school_admin, school=school, data=ROSTER.encode())
    assert len(calls) == 3  # two students were written before the failure...
    assert snapshot(school) == before  # ...and none of it stayed


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, message",
    [
        ("student_number,first_name,last_name,class\n1,Léa,Martin,Maths 4e B\n".encode("utf-16"), "UTF-8"),
        ("prénom;nom\nLéa;Martin\n".encode("cp1252"), "UTF-8"),
        (b"\r\n \r\n", "empty"),
        (b"first_name,last_name,class\nLea,Martin,Maths 4e B\n", "Missing column"),
        (b"student_number,first_name,last_name,class,age\n1,Lea,Martin,Maths 4e B,12\n", "Unknown column"),
        (b"student_number,first_name,last_name,class\n", "no students"),
    ],
    ids=["utf16", "cp1252", "empty", "missing-header", "unknown-column", "header-only"],
)
def test_a_malformed_file_is_refused_with_a_clear_message(admin_client, school, data, message):
    before = snapshot(school)
    page = upload(admin_client, data)
    preview = page.context["preview"]
    assert preview.file_errors and message in preview.file_errors[0]
    assert message in page.content.decode()
    assert snapshot(school) == before


@pytest.mark.django_db
def test_a_file_of_ten_thousand_rows_is_refused_at_the_row_limit(admin_client, school):
    rows = "".join(f"{n},First{n},Last{n},Maths 4e B\n" for n in range(10_000))
    page = upload(admin_client, "student_number,first_name,last_name,class\n" + rows)
    assert page.context["preview"].file_errors == [
        f"The file has more than {roster.ROSTER_MAX_ROWS} rows. Import at most {roster.ROSTER_MAX_ROWS} students at a time."
    ]
    assert "Confirm the import" not in page.content.decode()
    assert not User.objects.filter(school=school, first_name__startswith="First").exists()


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused(admin_client, school):
    data = "student_number,first_name,last_name,class\n" + "1,Léa,Martin,Maths 4e B\n" + "x" * roster.ROSTER_MAX_BYTES
    page = upload(admin_client, data)
    assert "too large" in page.content.decode()
    assert not User.objects.filter(school=school, student_number="1").exists()


@pytest.mark.django_db
def test_exactly_the_row_limit_is_accepted(school):
    Classroom.objects.create(school=school, name="Big class")
    rows = "".join(f"{n},F{n},L{n},Big class\n" for n in range(roster.ROSTER_MAX_ROWS))
    preview = roster.roster_read(school=school, data=("student_number,first_name,last_name,class\n" + rows).encode())
    assert preview.ok and len(preview.rows) == roster.ROSTER_MAX_ROWS


@pytest.mark.django_db
def test_a_student_number_of_a_staff_account_is_refused(admin_client, school, teacher):
    teacher.student_number = "9999"
    teacher.save()
    preview = upload(admin_client, "student_number,first_name,last_name,class\n9999,Théo,T,Maths 4e B\n").context[
        "preview"
    ]
    assert "staff account" in preview.rows[0].errors[0]


@pytest.mark.django_db
def test_the_roster_export_is_the_import_format_and_never_starts_a_cell_with_a_formula(admin_client, school, student):
    student.first_name = '=HYPERLINK("http://evil")'
    student.last_name = "@SUM(A1)"
    student.student_number = "-5"
    student.save()
    response = admin_client.get(reverse("school_roster_export"))
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["student_number", "first_name", "last_name", "email", "class"]
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert ["'-5", '\'=HYPERLINK("http://evil")', "'@SUM(A1)", "", "Maths 4e B"] in rows


@pytest.mark.django_db
def test_other_school_admin_cannot_import_into_this_school(other_admin, school, as_user, classroom):
    before = snapshot(school)
    confirm(as_user(other_admin), ROSTER)
    assert snapshot(school) == before  # the rows name classes of another school: unknown there


@pytest.mark.django_db
def test_the_previewed_file_comes_back_intact_with_the_confirmation(admin_client, school):
    """What a browser sends back from the preview's hidden field is the file that was previewed."""
    import html
    import re

    tricky = ROSTER.replace("\n", "\r\n").replace("Inès,Petit", '"Inès, ""Nina""",Petit<b>')
    page = upload(admin_client, tricky).content.decode()
    field = re.search(r'<textarea name="roster" hidden>(.*?)</textarea>', page, re.S).group(1)
    sent_back = html.unescape(field.removeprefix("\n"))  # browsers drop the newline after <textarea>
    response = confirm(admin_client, sent_back)
    assert response.status_code == 200
    assert User.objects.get(school=school, student_number="1003").first_name == 'Inès, "Nina"'
    assert User.objects.get(school=school, student_number="1003").last_name == "Petit<b>"


@pytest.mark.django_db
def test_the_export_of_students_made_here_imports_again_and_changes_nothing(
    admin_client, school, school_admin, classroom, student
):
    cards = services.students_create(actor=school_admin, classroom=classroom, names=[("Léa", "Martin")])
    made_here = User.objects.get(username=cards[0].username)
    assert made_here.student_number == f"tutor-{made_here.pk}"
    student.last_name = "Durand"
    student.save()
    assert student.student_number == ""  # an account from before numbers were given
    exported = admin_client.get(reverse("school_roster_export")).content.decode("utf-8-sig")
    rows = exported.strip().splitlines()[1:]
    assert len(rows) == 2 and all(row.split(",")[0] for row in rows), exported
    preview = upload(admin_client, exported).context["preview"]
    assert preview.ok, [row.errors for row in preview.rows]
    assert [row.action for row in preview.rows] == ["unchanged", "unchanged"]
    before = snapshot(school)
    confirm(admin_client, exported)
    assert snapshot(school) == before
