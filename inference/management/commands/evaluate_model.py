"""Compare a fine-tuned model with the base model on an export's held-out rows
(inference/evaluate.py): a side-by-side table, then one JSON line.

    nice -n 10 python manage.py evaluate_model --dataset var/exports/2026-12 \
        --candidate var/training/models/<run> [--base /path/to/base]
"""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Compare a fine-tuned model with the base on the held-out rows of an export."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--candidate", required=True, help="The fine-tuned model's folder.")
        parser.add_argument("--base", help="The base model (default: the deployment's TUTOR_MODEL).")
        parser.add_argument("--holdout", type=float, default=0.2)

    def handle(self, *args, **options) -> None:
        from inference.evaluate import evaluate, table
        from inference.finetune import FinetuneError

        try:
            report = evaluate(
                dataset=options["dataset"],
                candidate=options["candidate"],
                base=options["base"],
                holdout=options["holdout"],
            )
        except (FinetuneError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(table(report))
        self.stdout.write(json.dumps(report, ensure_ascii=False))
