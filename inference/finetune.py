"""Fine-tune the in-process model on an export of teachers' review decisions (issue 19).

LoRA adapters (PEFT) trained with TRL's DPO trainer on dpo.jsonl of an export
(tutor/training/dataset.py), then merged into the base weights: the result is a plain
model folder that the in-process engine loads like any other, named by TUTOR_MODELS
(`{"key": "school-v1", "backend": "transformers", "path": "<the folder>", ...}`).

Contract:
* Reproducible: the folder is named after the base model, the dataset's SHA-256 and the
  seed (`<base>-dpo-<sha12>-seed<seed>`); the same three give the same run (seeded data
  order, LoRA init and dropout), and a folder that already exists is returned as it is.
* Held out: rows are oldest first; the last `holdout` share (default 20%) is never
  trained on, so that inference/evaluate.py can measure on it.
* Nothing half-made where settings could pick it up: everything is written to a hidden
  temporary folder beside the destination and renamed into place at the very end. The
  time cap, a full disk, or any failure removes the temporary folder and raises
  FinetuneError with a message that says what to do. A run that was killed cannot clean
  up: the next run removes the temporary folders whose process is gone (WORK_PID_FILE).
* Progress: one log line per logging step (step, loss, seconds so far).

Only the Llama-style architectures the in-process engine runs (SUPPORTED) are accepted:
a model it could not load would be of no use to the school.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

SUPPORTED = ("llama", "mistral")  # inference/backends/transformers_backend.py runs these
MIN_PAIRS = 2
DEFAULT_HOLDOUT = 0.2
RUN_FILE = "tutor-finetune.json"
Log = Callable[[str], None]


class FinetuneError(Exception):
    """A run that could not be made; the message says why and what to do. No model was written."""


@dataclass
class FinetuneSettings:
    seed: int = 0
    epochs: float = 1.0
    max_steps: int = -1  # > 0: stop after this many steps (tests, smoke runs)
    batch_size: int = 2
    learning_rate: float = 5e-5
    beta: float = 0.1
    lora_r: int = 8
    lora_alpha: int = 16
    max_length: int = 512
    holdout: float = DEFAULT_HOLDOUT
    max_seconds: float = 3600.0
    threads: int = 0  # 0: torch's default


@dataclass
class FinetuneResult:
    folder: str
    run_id: str
    dataset_sha256: str
    pairs: int
    held_out: int
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    reused: bool = False


def read_rows(dataset: str | os.PathLike, name: str = "dpo.jsonl") -> list[dict]:
    """The rows of one file of an export (a folder, or the file itself), oldest first."""
    path = Path(dataset)
    if path.is_dir():
        path = path / name
    if not path.is_file():
        raise FinetuneError(f"No {name} at {path}: point --dataset at a folder written by `manage.py export_reviews`.")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise FinetuneError(f"{path}, line {number}, is not JSON ({exc}): export the decisions again.") from None
    return rows


def split(rows: list, holdout: float = DEFAULT_HOLDOUT) -> tuple[list, list]:
    """(train, held out): the most recent `holdout` share of the rows is held out."""
    held = math.ceil(len(rows) * holdout) if holdout > 0 else 0
    return rows[: len(rows) - held], rows[len(rows) - held :]


def rows_sha256(rows: list[dict]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


def base_model_folder(base: str | None) -> tuple[Path, str]:
    """(a transformers folder, a short name) of `base`: a model folder, a GGUF file
    (converted once, inference/convert.py), or None for the deployment's default model."""
    from django.conf import settings

    from inference.convert import convert_gguf, resolve_source

    config = {"MODEL": base, "GGUF_FILE": ""} if base else dict(settings.TUTOR_MODEL)
    cache_dir = settings.TUTOR_MODEL.get("CACHE_DIR")
    from inference.engine import ModelUnavailable

    try:
        source = resolve_source(config)
    except ModelUnavailable as exc:
        raise FinetuneError(str(exc)) from None
    if source.gguf is not None:
        return Path(convert_gguf(source.gguf, cache_dir)), source.name
    folder = Path(source.hf or "")
    if not folder.is_dir():
        raise FinetuneError(f"{source.hf!r} is not a model folder on this machine: fine-tuning needs local weights.")
    return folder, source.name


def _slug(name: str) -> str:
    name = re.sub(r"\.gguf$", "", Path(name).name, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "model"


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) or sum(
        p.stat().st_size for p in folder.glob("*.bin")
    )


def _check_architecture(folder: Path) -> None:
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise FinetuneError(
            f"{folder} has no readable config.json ({exc}): is it a transformers model folder?"
        ) from None
    kind = config.get("model_type", "?")
    if kind not in SUPPORTED or config.get("attention_bias") or config.get("mlp_bias"):
        raise FinetuneError(
            f"The model in {folder} has architecture {kind!r}: this fine-tune makes models for the in-process "
            f"engine, which runs Llama-style models without biases ({', '.join(SUPPORTED)}: SmolLM2, Llama, "
            "Mistral). Fine-tune other models where they are served."
        )


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def finetune(
    *,
    dataset: str | os.PathLike,
    out_dir: str | os.PathLike,
    base: str | None = None,
    settings: FinetuneSettings | None = None,
    log: Log = print,
) -> FinetuneResult:
    """Train, merge and publish a model folder under `out_dir`; see the module docstring."""
    settings = settings or FinetuneSettings()
    rows = read_rows(dataset)
    if not rows:
        raise FinetuneError(
            "The export has no preference pairs (dpo.jsonl is empty). Pairs come from drafts that teachers "
            "substantially edited or replaced with their own reply: export a longer period, or the whole school."
        )
    train, held = split(rows, settings.holdout)
    needed = max(MIN_PAIRS, settings.batch_size)
    if len(train) < needed:
        raise FinetuneError(
            f"Only {len(train)} preference pairs to train on ({len(rows)} in the export, {len(held)} held out for "
            f"the evaluation); the trainer needs at least {needed}. Export a longer period, or wait for more reviews."
        )
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FinetuneError(f"Cannot create {out}: {exc.strerror or exc}.") from None
    folder, base_name = base_model_folder(base)
    _check_architecture(folder)
    sha = rows_sha256(train)
    run_id = f"{_slug(base_name)}-dpo-{sha[:12]}-seed{settings.seed}"
    final = out / run_id
    if (final / RUN_FILE).is_file():
        log(f"{final} already exists: the same base, dataset and seed make the same model.")
        done = json.loads((final / RUN_FILE).read_text())
        return FinetuneResult(**{**done["result"], "folder": str(final), "reused": True})
    needed_bytes = 3 * _weights_bytes(folder) + 64 * 2**20  # merged weights, trainer state, headroom
    free = shutil.disk_usage(out).free
    if free < needed_bytes:
        raise FinetuneError(
            f"Not enough disk space in {out}: {free // 2**20} MB free, about {needed_bytes // 2**20} MB needed. "
            "Free some space or choose another --out."
        )
    remove_killed_runs(out, log)
    work = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=out))  # hidden: no setting names it
    (work / WORK_PID_FILE).write_text(str(os.getpid()))
    try:
        result = _train(folder, train, work, settings, log)
        result.folder, result.run_id, result.dataset_sha256, result.held_out = str(final), run_id, sha, len(held)
        run = {
            "base": base_name,
            "base_folder": str(folder),
            "settings": asdict(settings),
            "result": {k: v for k, v in asdict(result).items() if k != "reused"},
            "versions": _versions(),
        }
        (work / "model" / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
        os.replace(work / "model", final)  # the one step that makes it visible
        return result
    except OSError as exc:
        if _disk_full(exc):
            raise FinetuneError(
                f"The disk filled up while training in {out}: no model was written. Free space."
            ) from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


WORK_PID_FILE = "running.pid"  # in a run's temporary folder: the process writing it


def remove_killed_runs(out: Path, log: Log) -> list[Path]:
    """Remove the temporary folders in `out` left by runs whose process no longer exists
    (killed, or the machine restarted); a run still going keeps its own. Returns them."""
    removed = []
    for work in out.glob(".*"):
        try:
            pid = int((work / WORK_PID_FILE).read_text())
        except (OSError, ValueError):
            continue  # not a run's folder, or one that is just starting
        if _process_exists(pid):
            continue
        shutil.rmtree(work, ignore_errors=True)
        log(f"removed {work}, left by a run that was stopped before it finished")
        removed.append(work)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _versions() -> dict:
    import peft
    import torch
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "trl": trl.__version__,
    }


def _train(folder: Path, rows: list[dict], work: Path, settings: FinetuneSettings, log: Log) -> FinetuneResult:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
    from trl import DPOConfig, DPOTrainer

    from inference.convert import configure_tokenizer

    if settings.threads:
        torch.set_num_threads(settings.threads)
    set_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    configure_tokenizer(tokenizer)
    tokenizer.padding_side = "right"  # training pads on the right; the engine does its own
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    data = Dataset.from_list([{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in rows])
    steps_per_epoch = math.ceil(len(rows) / settings.batch_size)
    total = settings.max_steps if settings.max_steps > 0 else math.ceil(steps_per_epoch * settings.epochs)
    started = time.monotonic()
    state = {"capped": False, "step": 0, "losses": []}

    class Progress(TrainerCallback):
        def on_step_end(self, args, trainer_state, control, **kwargs):  # noqa: ANN001, ANN201
            state["step"] = trainer_state.global_step
            if time.monotonic() - started > settings.max_seconds and trainer_state.global_step < total:
                state["capped"] = True
                control.should_training_stop = True
            return control

        def on_log(self, args, trainer_state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
            if logs and "loss" in logs:
                state["losses"].append(round(float(logs["loss"]), 4))
                log(
                    f"step {trainer_state.global_step}/{total}  loss {logs['loss']:.4f}  "
                    f"{time.monotonic() - started:.0f} s"
                )

    config = DPOConfig(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=settings.batch_size,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        beta=settings.beta,
        max_length=settings.max_length,
        seed=settings.seed,
        data_seed=settings.seed,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        dataset_num_proc=None,
        disable_tqdm=True,
        gradient_checkpointing=False,  # small models on a CPU: memory is not the limit, time is
    )
    lora = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    log(f"training on {len(rows)} pairs, {total} steps, seed {settings.seed}, cap {settings.max_seconds:.0f} s")
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[Progress()],
    )
    trainer.train()
    seconds = time.monotonic() - started
    if state["capped"]:
        raise FinetuneError(
            f"Stopped at the time cap ({settings.max_seconds:.0f} s) after {state['step']} of {total} steps: "
            "no model was written. Raise the cap, train on fewer pairs, or run it on a faster machine."
        )
    merged = trainer.model.merge_and_unload()
    merged.save_pretrained(str(work / "model"), safe_serialization=True)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(str(work / "model"))
    log(f"trained {state['step']} steps in {seconds:.1f} s")
    return FinetuneResult(
        folder="",
        run_id="",
        dataset_sha256="",
        pairs=len(rows),
        held_out=0,
        steps=state["step"],
        seconds=round(seconds, 2),
        losses=state["losses"],
    )
