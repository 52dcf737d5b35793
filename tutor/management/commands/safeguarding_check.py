"""Print how the safeguarding classifier reads each line of text: the tier, the
category, why, and the nearest examples. For a school to test its setup (and its own
examples, with --school) before opening the tutor to students.

    python manage.py safeguarding_check --file messages.txt
    echo "je veux en finir" | python manage.py safeguarding_check --school 3
"""

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from classrooms.models import School
from tutor.safeguarding import services


class Command(BaseCommand):
    help = "Show the tier, category and nearest examples the safeguarding classifier gives each line of text."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", help="A text file, one message a line (default: standard input).")
        parser.add_argument("--school", type=int, help="Also use this school's own examples (its id).")
        parser.add_argument("--neighbours", type=int, default=3, help="How many nearest examples to show.")

    def handle(self, *args, **options) -> None:
        school_id = options["school"]
        if school_id is not None and not School.objects.filter(pk=school_id).exists():
            raise CommandError(f"No school has the id {school_id}.")
        if options["file"]:
            try:
                with open(options["file"], encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError as exc:
                raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from None
        else:
            lines = sys.stdin.read().splitlines()
        counts = {0: 0, 1: 0, 2: 0}
        for line in lines:
            text = line.strip()
            if not text:
                continue
            found = services.assess_message(text, school_id=school_id)
            counts[found.tier] += 1
            style = {0: self.style.SUCCESS, 1: self.style.WARNING, 2: self.style.ERROR}[found.tier]
            self.stdout.write(
                style(f"tier {found.tier} {found.tier_label:8} {found.category:10} ({found.reason})") + f"  {text}"
            )
            for n in found.neighbours[: options["neighbours"]]:
                origin = "school" if n.school else "built-in"
                self.stdout.write(f"      {n.similarity:.3f} {n.label:10} {origin:8} {n.text}")
        self.stdout.write(
            f"{sum(counts.values())} lines: {counts[2]} urgent, {counts[1]} concern, {counts[0]} nothing."
        )
