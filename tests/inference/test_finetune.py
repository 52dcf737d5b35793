"""The fine-tune on teachers' decisions (inference/finetune.py), on a tiny random-weight
Llama built here: a few steps make a folder the in-process engine loads and drafts with;
bad input gets a clear message and leaves no model where settings could pick it up."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from inference.engine import DraftJob, engine_for_config
from inference.finetune import WORK_PID_FILE, FinetuneError, FinetuneSettings, finetune, remove_killed_runs
from tests.inference.tiny_models import build_model, write_pairs

QUICK = FinetuneSettings(max_steps=2, batch_size=2, max_length=128)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("tiny") / "tiny-llama", "llama")


def _visible(out):
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def left_by_a_killed_run(out, name=".tiny-dpo-000000000000-seed0.abc"):
    """A run's temporary folder whose process is gone (kill -9 during training)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    work = out / name
    (work / "trainer").mkdir(parents=True)
    (work / WORK_PID_FILE).write_text(str(gone.pid))
    return work


def test_a_tiny_finetune_makes_a_folder_the_engine_loads_and_drafts_with(base, tmp_path):
    data = write_pairs(tmp_path / "export", 10)
    out = tmp_path / "models"
    killed = left_by_a_killed_run(out)
    lines = []
    result = finetune(dataset=data, out_dir=out, base=str(base), settings=QUICK, log=lines.append)
    assert result.steps == 2 and result.pairs == 8 and result.held_out == 2  # the last 20% held out
    assert any(line.startswith("step 2/2  loss") for line in lines)
    # Nothing else: no temporary folder of this run, nor the killed run's.
    assert list(out.iterdir()) == [out / result.run_id]
    assert any(str(killed) in line and "stopped before it finished" in line for line in lines)
    run = json.loads((out / result.run_id / "tutor-finetune.json").read_text())
    assert run["result"]["dataset_sha256"] == result.dataset_sha256 and run["settings"]["seed"] == 0
    engine = engine_for_config(
        {
            "BACKEND": "transformers",
            "MODEL": result.folder,
            "GGUF_FILE": "",
            "QUANT": "none",
            "MAX_NEW_TOKENS": 6,
            "MAX_BATCH": 2,
            "CACHE_DIR": str(tmp_path / "cache"),
        }
    )
    try:
        draft = engine.draft(DraftJob(messages=[{"role": "user", "content": "What is 3 plus 3?"}], max_new_tokens=6))
    finally:
        engine.close()
    assert draft.new_tokens > 0 and draft.text and draft.model_name == result.run_id
    # The same base, dataset and seed: the same folder, not trained again.
    again = finetune(dataset=data, out_dir=out, base=str(base), settings=QUICK, log=lines.append)
    assert again.reused and again.folder == result.folder


def test_a_running_fine_tune_keeps_its_temporary_folder(tmp_path):
    killed = left_by_a_killed_run(tmp_path)
    running = tmp_path / ".other-run.xyz"
    running.mkdir()
    (running / WORK_PID_FILE).write_text(str(os.getpid()))
    unrelated = tmp_path / ".cache"
    unrelated.mkdir()
    assert remove_killed_runs(tmp_path, print) == [killed]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache", ".other-run.xyz"]


def test_an_empty_export_says_so(base, tmp_path):
    (tmp_path / "dpo.jsonl").write_text("")
    with pytest.raises(FinetuneError, match="no preference pairs"):
        finetune(dataset=tmp_path, out_dir=tmp_path / "models", base=str(base), settings=QUICK)
    assert not (tmp_path / "models").exists()


def test_too_few_pairs_say_how_many_are_needed(base, tmp_path):
    data = write_pairs(tmp_path / "export", 2)  # one to train on, one held out
    with pytest.raises(FinetuneError, match="Only 1 preference pairs .* needs at least 2"):
        finetune(dataset=data, out_dir=tmp_path / "models", base=str(base), settings=QUICK)


def test_an_architecture_the_engine_cannot_run_is_refused(tmp_path):
    other = tmp_path / "qwen"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "qwen2", "attention_bias": True}))
    data = write_pairs(tmp_path / "export", 6)
    with pytest.raises(FinetuneError, match="architecture 'qwen2'.*Llama-style"):
        finetune(dataset=data, out_dir=tmp_path / "models", base=str(other), settings=QUICK)
    assert _visible(tmp_path / "models") == []


def test_the_time_cap_mid_epoch_leaves_no_model(base, tmp_path):
    data = write_pairs(tmp_path / "export", 10)
    capped = FinetuneSettings(batch_size=2, max_length=128, max_seconds=0)  # one epoch: 4 steps
    with pytest.raises(FinetuneError, match=r"time cap \(0 s\) after 1 of 4 steps: no model was written"):
        finetune(dataset=data, out_dir=tmp_path / "models", base=str(base), settings=capped)
    assert list((tmp_path / "models").iterdir()) == []


def test_a_full_disk_is_said_before_training(base, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    data = write_pairs(tmp_path / "export", 6)
    with pytest.raises(FinetuneError, match="Not enough disk space .* 0 MB free"):
        finetune(dataset=data, out_dir=tmp_path / "models", base=str(base), settings=QUICK)
    assert list((tmp_path / "models").iterdir()) == []


def test_the_disk_filling_up_while_saving_leaves_no_model(base, tmp_path, monkeypatch):
    import errno

    from transformers import PreTrainedModel

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
    data = write_pairs(tmp_path / "export", 6)
    with pytest.raises(FinetuneError, match="disk filled up"):
        finetune(dataset=data, out_dir=tmp_path / "models", base=str(base), settings=QUICK)
    assert list((tmp_path / "models").iterdir()) == []


def test_the_training_task_refuses_a_school_without_consent(school, settings, tmp_path):
    from inference.training import finetune_school_model

    settings.TUTOR_TRAINING_DIR = str(tmp_path)
    assert "has not agreed" in finetune_school_model(school.pk)["error"]
    assert list(tmp_path.iterdir()) == []  # no export written, no model


def test_the_training_task_goes_to_its_own_queue(settings):
    from tutor.celery import app

    assert app.amqp.router.route({}, "inference.finetune_school_model")["queue"].name == settings.CELERY_TRAINING_QUEUE


def _settings_module(monkeypatch, **environ):
    """tutor/settings.py read afresh under `environ` (Django's own settings untouched)."""
    import importlib.util

    import tutor.settings

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("settings_under_test", tutor.settings.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_nightly_fine_tune_is_scheduled_only_when_set_and_on_the_training_queue(monkeypatch):
    from tutor.celery import app

    monkeypatch.delenv("TUTOR_TRAINING_NIGHTLY", raising=False)
    off = _settings_module(monkeypatch)
    assert "inference.finetune_consenting_schools" not in {e["task"] for e in off.CELERY_BEAT_SCHEDULE.values()}
    on = _settings_module(monkeypatch, TUTOR_TRAINING_NIGHTLY="2", TUTOR_TRAINING_MAX_MINUTES="90")
    entry = on.CELERY_BEAT_SCHEDULE["nightly-fine-tunes"]
    assert entry["task"] == "inference.finetune_consenting_schools" and entry["schedule"].hour == {2}
    assert entry["options"]["queue"] == on.CELERY_TRAINING_QUEUE != on.CELERY_HOUSEKEEPING_QUEUE
    assert entry["kwargs"] == {"max_minutes": 90.0}
    route = app.amqp.router.route({}, "inference.finetune_consenting_schools")  # sent by hand, the same queue
    assert route["queue"].name == on.CELERY_TRAINING_QUEUE
    with pytest.raises(Exception, match="hour of the nightly fine-tune, 0 to 23"):
        _settings_module(monkeypatch, TUTOR_TRAINING_NIGHTLY="2am")


def test_the_nightly_run_takes_only_consenting_schools_within_the_cap(school, other_school, settings, tmp_path):
    from inference.training import finetune_consenting_schools

    settings.TUTOR_TRAINING_DIR = str(tmp_path)
    school.training_consent = True
    school.save()
    runs = finetune_consenting_schools(max_minutes=60)
    assert list(runs) == [school.pk]  # the other school did not agree: not even tried
    assert "error" in runs[school.pk] and "skipped" not in runs[school.pk]["error"]  # nothing decided yet
    assert finetune_consenting_schools(max_minutes=1) == {
        school.pk: {"error": "skipped: the night's time cap is spent"}
    }
