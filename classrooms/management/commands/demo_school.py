"""Create (or reset) a demo school: an admin, a teacher, two students in one class, and
the school's CPE as its designated safeguarding contact (default supportive messages
approved, the tutor open to students)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from classrooms.models import Classroom, Membership, School, User
from classrooms.services import safeguarding_defaults_approve

DEMO_PASSWORD = "demo-pass-2026"
PEOPLE = [
    ("demo-admin", "Ada", "Admin", "school_admin"),
    ("demo-teacher", "Théo", "Teacher", "teacher"),
    ("demo-student", "Sam", "Student", "student"),
    ("demo-student2", "Lou", "Student", "student"),
    ("demo-cpe", "Camille", "CPE", "safeguarding"),
]


class Command(BaseCommand):
    help = "Create a demo school with known logins (for trying the platform, never for real pupils)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        school, _ = School.objects.get_or_create(name="Demo School")
        classroom, _ = Classroom.objects.get_or_create(
            school=school, name="Maths 4e B", defaults={"subject": "Mathematics", "level": "Year 8 (4e)"}
        )
        for username, first, last, role in PEOPLE:
            user, _ = User.objects.get_or_create(username=username, defaults={"school": school})
            user.first_name, user.last_name, user.school, user.is_active = first, last, school, True
            user.is_school_admin = role == "school_admin"
            user.set_password(DEMO_PASSWORD)
            user.save()
            if role in ("teacher", "student"):
                Membership.objects.update_or_create(classroom=classroom, user=user, defaults={"role": role})
            if role == "safeguarding" and not user.email:
                user.email = "cpe@demo-school.invalid"  # alert e-mails print on the console in development
                user.save(update_fields=["email"])
        admin = User.objects.get(username="demo-admin")
        safeguarding_defaults_approve(actor=admin, school=school, contacts=[User.objects.get(username="demo-cpe")])
        self.stdout.write(f"Demo school ready. Sign in with any of these (password: {DEMO_PASSWORD}):")
        for username, _, _, role in PEOPLE:
            self.stdout.write(f"  {username:15} {role}")
