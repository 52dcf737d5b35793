"""Start the Celery worker that holds a model and drafts replies.

One worker drafts with one model (`--model KEY`, a key of settings.TUTOR_MODELS; by
default the deployment's default model): it consumes that model's queue, so that a
district can run workers for a model server beside a local CPU worker. Every worker also
consumes the main queue, for the housekeeping tasks (and drafts sent there by an older
version, which it hands on to their model's queue).

The `threads` pool: one process keeps one copy of the model, and its task threads hand
their drafts to the engine's decoding thread, which batches them (see inference/tasks.py
for why not prefork). Concurrency matches the engine's batch size so that a whole class
can be drafted at once (for a model server: its concurrent requests per worker).

The command supervises the Celery process and starts it again when it dies: Celery 5.7
can exit on its own ("Unrecoverable error") when Redis restarts while it restores
unacknowledged messages (seen in tests/faults). A worker whose model is missing exits
with MODEL_MISSING and is not restarted.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tutor import model_settings
from tutor.celery import app

MODEL_MISSING = 3


class Command(BaseCommand):
    help = "Run the drafting worker (and, with --beat, the periodic housekeeping)."

    def add_arguments(self, parser):
        parser.add_argument("--beat", action="store_true", help="Also run the periodic tasks (one worker only).")
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument(
            "--model", default="", help="The key of the model this worker drafts with (default: the default model)."
        )
        parser.add_argument("--once", action="store_true", help="Run Celery in this process, unsupervised.")

    def handle(self, *args, **options):
        keys = [m["key"] for m in model_settings.declared_models()]
        options["model"] = options["model"] or keys[0]
        if options["model"] not in keys:
            raise CommandError(f"No model {options['model']!r} is declared: TUTOR_MODELS declares {', '.join(keys)}.")
        if options["once"]:
            return self.run_celery(options)
        return self.supervise(options)

    def run_celery(self, options):
        key = options["model"]
        os.environ["TUTOR_WORKER_MODEL"] = key  # read by inference.tasks as the worker starts
        argv = [
            "worker",
            "--pool=threads",
            f"--concurrency={model_settings.model_config(key)['MAX_BATCH']}",
            f"--queues={settings.CELERY_TASK_DEFAULT_QUEUE},{model_settings.draft_queue(key)}",
            f"--hostname={key}@%h",
            f"--loglevel={options['loglevel']}",
            "--without-gossip",
            "--without-mingle",
        ]
        if options["beat"]:
            argv.append("--beat")
        app.worker_main(argv)

    def supervise(self, options):
        command = [
            sys.executable,
            sys.argv[0],
            "worker",
            "--once",
            f"--loglevel={options['loglevel']}",
            f"--model={options['model']}",
        ]
        if options["beat"]:
            command.append("--beat")
        stopping = False
        child = None

        def forward(signum, frame):
            nonlocal stopping
            stopping = True
            if child is not None and child.poll() is None:
                child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        while True:
            child = subprocess.Popen(command)
            code = child.wait()
            if stopping or code == 0:
                return
            if code == MODEL_MISSING:
                sys.exit(MODEL_MISSING)
            self.stderr.write(f"The drafting worker stopped (exit {code}); starting it again in 2 s.")
            time.sleep(2)
