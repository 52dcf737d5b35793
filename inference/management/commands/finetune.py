"""Fine-tune the in-process model on an export of review decisions (inference/finetune.py):
LoRA + TRL's DPO trainer, merged, published as a versioned folder that TUTOR_MODELS can
name. The most recent 20% of the pairs are held out for `manage.py evaluate_model`.

    nice -n 10 python manage.py finetune --dataset var/exports/2026-12 --out var/training/models \
        [--base /path/to/model-or.gguf] [--seed 0] [--epochs 1] [--max-minutes 60]
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Fine-tune the in-process model on an export of teachers' review decisions (LoRA, DPO)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, help="A folder written by export_reviews (its dpo.jsonl).")
        parser.add_argument("--out", required=True, help="Where the model folder goes (created if needed).")
        parser.add_argument("--base", help="A model folder or GGUF file (default: the deployment's TUTOR_MODEL).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--epochs", type=float, default=1.0)
        parser.add_argument("--max-steps", type=int, default=-1, help="Stop after this many steps (smoke runs).")
        parser.add_argument("--batch-size", type=int, default=2)
        parser.add_argument("--learning-rate", type=float, default=5e-5)
        parser.add_argument("--beta", type=float, default=0.1, help="DPO's beta.")
        parser.add_argument("--lora-r", type=int, default=8)
        parser.add_argument("--max-length", type=int, default=512, help="Tokens of prompt and reply kept.")
        parser.add_argument("--holdout", type=float, default=0.2, help="Share of the most recent pairs not trained on.")
        parser.add_argument("--max-minutes", type=float, default=60.0, help="The time cap; no model if reached.")
        parser.add_argument("--threads", type=int, default=0)

    def handle(self, *args, **options) -> None:
        from inference.finetune import FinetuneError, FinetuneSettings, finetune

        settings = FinetuneSettings(
            seed=options["seed"],
            epochs=options["epochs"],
            max_steps=options["max_steps"],
            batch_size=options["batch_size"],
            learning_rate=options["learning_rate"],
            beta=options["beta"],
            lora_r=options["lora_r"],
            max_length=options["max_length"],
            holdout=options["holdout"],
            max_seconds=options["max_minutes"] * 60,
            threads=options["threads"],
        )
        try:
            result = finetune(
                dataset=options["dataset"],
                out_dir=options["out"],
                base=options["base"],
                settings=settings,
                log=lambda line: self.stderr.write(line),
            )
        except FinetuneError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(result.folder)
        self.stdout.write(
            f"{result.pairs} pairs ({result.held_out} held out), {result.steps} steps, {result.seconds:.1f} s; "
            f"name it in TUTOR_MODELS: "
            f'{{"key": "…", "label": "…", "backend": "transformers", "path": "{result.folder}"}}'
        )
