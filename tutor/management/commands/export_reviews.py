"""Export a school's (or a class's) review decisions as training data: dpo.jsonl,
kto.jsonl, sft.jsonl, card.json and README.md (the dataset card) in a folder. Only for a
school whose admin turned on "use teachers' review decisions to improve the school's
model"; pseudonymised; what retention deleted is gone (tutor/training/dataset.py).

    python manage.py export_reviews --school 3 --out var/exports/2026-12 [--classroom 12]
        [--since 2026-09-01] [--until 2026-12-01]
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from classrooms.models import Classroom, School
from tutor.training import services
from tutor.training.dataset import ExportRefused, write_export


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a day: write it as YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Export a school's review decisions (DPO, KTO, SFT rows and a dataset card), pseudonymised."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--school", type=int, required=True, help="The school's id.")
        parser.add_argument("--classroom", type=int, help="Only this class (its id).")
        parser.add_argument("--since", type=_day, help="First day of decisions (YYYY-MM-DD).")
        parser.add_argument("--until", type=_day, help="Last day of decisions (YYYY-MM-DD).")
        parser.add_argument("--out", required=True, help="The folder to write (created if needed).")

    def handle(self, *args, **options) -> None:
        school = School.objects.filter(pk=options["school"]).first()
        if school is None:
            raise CommandError(f"No school has the id {options['school']}.")
        classroom = None
        if options["classroom"] is not None:
            classroom = Classroom.objects.filter(pk=options["classroom"], school=school).first()
            if classroom is None:
                raise CommandError(f"The school {school.name!r} has no class with the id {options['classroom']}.")
        try:
            export = services.reviews_export(
                actor=None, school=school, classroom=classroom, since=options["since"], until=options["until"]
            )
            files = write_export(export, options["out"])
        except ExportRefused as exc:
            raise CommandError(exc.message) from None
        except OSError as exc:
            raise CommandError(f"Cannot write the export to {options['out']}: {exc.strerror or exc}") from None
        counts = export.card()["counts"]
        if not any(counts.values()):
            self.stderr.write("No decided replies in this scope and date range: the files are empty.")
        for path in files:
            self.stdout.write(path)
        self.stdout.write(", ".join(f"{name}: {count} rows" for name, count in counts.items()))
