"""Evaluate a fine-tuned model before anyone uses it (issue 19): on the most recent 20%
of an export's rows (the ones inference/finetune.py held out), the base model and the
candidate each draft afresh from the prompt the teacher's reply answered, and each draft
is compared with the teacher's final text:

    embedding   cosine similarity of the two texts' sentence embeddings (multilingual
                e5-small, tutor/embeddings.py); higher is closer
    edit        word-level edit distance over the longer text's words, case, punctuation
                and spacing ignored (tutor.training.dataset.word_edit_ratio); lower is closer
    words       the draft's length in words

Greedy decoding, so a rerun gives the same figures. `table()` prints them side by side;
the command prints the table, then one JSON line.
"""

from __future__ import annotations

import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from inference.finetune import DEFAULT_HOLDOUT, read_rows, split

MAX_NEW_TOKENS = 96


def _config_for(model: str | None) -> dict:
    from django.conf import settings

    config = dict(settings.TUTOR_MODEL)
    config["BACKEND"] = "transformers"
    if model:
        config.update({"MODEL": str(model), "GGUF_FILE": ""})
    return config


def _drafts(model: str | None, prompts: list[list[dict]]) -> tuple[str, list[str]]:
    from inference.engine import DraftJob, engine_for_config

    engine = engine_for_config(_config_for(model))
    try:
        with ThreadPoolExecutor(max_workers=min(32, max(1, len(prompts)))) as pool:
            texts = list(
                pool.map(lambda p: engine.draft(DraftJob(messages=p, max_new_tokens=MAX_NEW_TOKENS)).text, prompts)
            )
        return engine.model_name, [t.strip() for t in texts]
    finally:
        engine.close()


def held_out(dataset: str | os.PathLike, holdout: float = DEFAULT_HOLDOUT) -> list[tuple[list[dict], str]]:
    """(prompt, the teacher's final text) of the held-out rows: DPO rows (chosen), or
    SFT rows where DPO has none."""
    rows = read_rows(dataset)
    if rows:
        pairs = [(r["prompt"], r["chosen"][-1]["content"]) for r in rows]
    else:
        sft = read_rows(dataset, "sft.jsonl")
        pairs = [(r["messages"][:-1], r["messages"][-1]["content"]) for r in sft]
    return split(pairs, holdout)[1]


def score(drafts: list[str], finals: list[str]) -> dict:
    from tutor.embeddings import embed_passages
    from tutor.training.dataset import normal_words, word_edit_ratio

    a, b = embed_passages(drafts), embed_passages(finals)
    cosines = [float(x @ y) for x, y in zip(a, b, strict=True)]
    edits = [word_edit_ratio(d, f) for d, f in zip(drafts, finals, strict=True)]
    return {
        "embedding_similarity": round(statistics.fmean(cosines), 4),
        "edit_distance_ratio": round(statistics.fmean(edits), 4),
        "words_mean": round(statistics.fmean(len(normal_words(d)) for d in drafts), 1),
    }


def evaluate(
    *, dataset: str | os.PathLike, candidate: str, base: str | None = None, holdout: float = DEFAULT_HOLDOUT
) -> dict:
    """Figures of the base model and the candidate on the held-out rows (module docstring)."""
    rows = held_out(dataset, holdout)
    if not rows:
        raise ValueError(f"No held-out rows in {dataset}: the export is empty or too small.")
    prompts, finals = [p for p, _ in rows], [f for _, f in rows]
    report: dict = {"dataset": str(Path(dataset)), "held_out_rows": len(rows), "models": {}}
    for role, model in (("base", base), ("candidate", candidate)):
        name, drafts = _drafts(model, prompts)
        report["models"][role] = {"model": name, **score(drafts, finals), "example": drafts[0][:200]}
    report["teacher_example"] = finals[0][:200]
    return report


def table(report: dict) -> str:
    base, new = report["models"]["base"], report["models"]["candidate"]
    rows = [
        ("", "base", "fine-tuned"),
        ("model", base["model"], new["model"]),
        (
            "embedding similarity (higher closer)",
            f"{base['embedding_similarity']:.3f}",
            f"{new['embedding_similarity']:.3f}",
        ),
        (
            "word edit distance ratio (lower closer)",
            f"{base['edit_distance_ratio']:.3f}",
            f"{new['edit_distance_ratio']:.3f}",
        ),
        ("words per draft", f"{base['words_mean']:.1f}", f"{new['words_mean']:.1f}"),
    ]
    widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
    lines = [f"held-out rows: {report['held_out_rows']}"]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
