"""Start the Celery worker that holds the model and drafts replies.

The `threads` pool: one process keeps one copy of the model, and its task threads hand
their drafts to the engine's decoding thread, which batches them (see inference/tasks.py
for why not prefork). Concurrency matches the engine's batch size so that a whole class
can be drafted at once.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from tutor.celery import app


class Command(BaseCommand):
    help = "Run the drafting worker (and, with --beat, the periodic housekeeping)."

    def add_arguments(self, parser):
        parser.add_argument("--beat", action="store_true", help="Also run the periodic tasks (one worker only).")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, **options):
        argv = [
            "worker",
            "--pool=threads",
            f"--concurrency={settings.TUTOR_MODEL['MAX_BATCH']}",
            f"--queues={settings.CELERY_TASK_DEFAULT_QUEUE}",
            f"--loglevel={options['loglevel']}",
            "--without-gossip",
            "--without-mingle",
        ]
        if options["beat"]:
            argv.append("--beat")
        app.worker_main(argv)
