"""The fine-tune as a Celery task, on its own queue (settings.CELERY_TRAINING_QUEUE), so
that beat (finetune_consenting_schools, when TUTOR_TRAINING_NIGHTLY is set) or an operator
can run it nightly within a time cap, on a worker of its own:

    celery -A tutor worker -Q tutor-training --pool solo --concurrency 1

Thin: export the school's decisions (tutor.training.services, which refuses a school
without consent), then inference.finetune. torch is imported only when the task runs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)


@shared_task(name="inference.finetune_school_model", acks_late=False)
def finetune_school_model(school_id: int, max_minutes: float = 60.0, seed: int = 0) -> dict:
    """Export school `school_id`'s decisions and fine-tune the default in-process model on
    them. Returns the run (folder, steps, seconds) or {"error": message}."""
    from classrooms.models import School
    from inference.finetune import FinetuneError, FinetuneSettings, finetune
    from tutor.training.dataset import ExportRefused, write_export
    from tutor.training.services import reviews_export

    school = School.objects.filter(pk=school_id).first()
    if school is None:
        return {"error": f"no school {school_id}"}
    root = Path(settings.TUTOR_TRAINING_DIR)
    try:
        export = reviews_export(actor=None, school=school)
        folder = root / "exports" / f"school-{school_id}-{timezone.now():%Y%m%d-%H%M%S}"
        write_export(export, str(folder))
        result = finetune(
            dataset=folder,
            out_dir=root / "models",
            settings=FinetuneSettings(seed=seed, max_seconds=max_minutes * 60),
            log=log.info,
        )
    except (ExportRefused, FinetuneError) as exc:
        message = getattr(exc, "message", str(exc))
        log.warning("fine-tune of school %s not made: %s", school_id, message)
        return {"error": message}
    log.info("fine-tune of school %s: %s (%s steps, %.0f s)", school_id, result.folder, result.steps, result.seconds)
    return {"folder": result.folder, "steps": result.steps, "seconds": result.seconds}


# Below this, a school's run could not finish even a step on a real model: left for tomorrow.
MIN_MINUTES_PER_SCHOOL = 5.0


@shared_task(name="inference.finetune_consenting_schools", acks_late=False)
def finetune_consenting_schools(max_minutes: float = 120.0) -> dict:
    """The nightly run (beat, when TUTOR_TRAINING_NIGHTLY is set): every school that agreed
    is fine-tuned in turn, each given what is left of `max_minutes`; the order turns by one
    school a day, so that a cap too short for all of them still reaches each in turn.
    Returns {school id: the run or its error}; schools not reached are "skipped"."""
    from classrooms.models import School

    deadline = time.monotonic() + max_minutes * 60
    schools = list(School.objects.filter(training_consent=True).order_by("pk").values_list("pk", flat=True))
    if schools:
        turn = timezone.localdate().toordinal() % len(schools)
        schools = schools[turn:] + schools[:turn]
    runs: dict[int, dict] = {}
    for school_id in schools:
        left = (deadline - time.monotonic()) / 60
        if left < MIN_MINUTES_PER_SCHOOL:
            runs[school_id] = {"error": "skipped: the night's time cap is spent"}
            continue
        runs[school_id] = finetune_school_model(school_id, max_minutes=left)
    log.info("nightly fine-tunes: %s", {k: "error" in v for k, v in runs.items()})
    return runs
