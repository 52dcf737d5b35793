"""The training loop measured on this machine (issue 19): a fixture dataset of simulated
teacher edits, one fine-tune, and the before/after evaluation on the held-out rows.

    nice -n 10 python bench/finetune.py --out var/bench-finetune          # all three steps
    nice -n 10 python bench/finetune.py --out var/bench-finetune --steps fixture,train

fixture  80 of the fixed questions of bench/quality_questions.py, in an order fixed by
         the seed, each drafted by the base model (the class's system prompt, as the
         worker drafts), and "reviewed" by a simulated teacher who rewrites every draft
         into a short guiding reply in the question's language (a hint and a question
         back, never the answer): the draft is "rejected", the rewrite "chosen". Written
         as an export (dpo.jsonl, card.json), oldest first.
train    `inference.finetune` on it: 20% held out, so one epoch over 64 pairs; the wall
         time is the figure (`train_seconds`), with the steps and losses.
evaluate `inference.evaluate` on the 16 held-out rows: the base model and the new one
         each draft afresh; similarity to the teacher's text (embedding cosine,
         tutor/embeddings.py, and word-level edit distance ratio). Table, then JSON.

The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")

import django  # noqa: E402

django.setup()

from bench.quality_questions import QUESTIONS  # noqa: E402
from classrooms.models import Classroom  # noqa: E402
from tutor.prompts import tutor_instructions  # noqa: E402

PAIRS = 80
HINTS = {
    "en": {
        "maths": "Let's work it out together. Write down what the question gives you, then do one step at a time.",
        "science": "Good question! Think about what you have already seen in class about this.",
        "other": "Good question! Let's think about it together.",
    },
    "fr": {
        "maths": "Cherchons ensemble. Écris ce que l'énoncé te donne, puis avance une étape à la fois.",
        "science": "Bonne question ! Pense à ce que tu as déjà vu en classe sur ce sujet.",
        "other": "Bonne question ! Réfléchissons ensemble.",
    },
}
ASK_BACK = {"en": "What would you try first?", "fr": "Par quoi commencerais-tu ?"}


def teacher_rewrite(language: str, subject: str) -> str:
    """The simulated teacher's reply: a hint in the question's language and a question back."""
    hints = HINTS["fr" if language == "fr" else "en"]
    return f"{hints.get(subject, hints['other'])} {ASK_BACK['fr' if language == 'fr' else 'en']}"


def prompt_for(language: str, subject: str, question: str) -> list[dict]:
    classroom = Classroom(subject=subject, level="collège", max_reply_words=60)
    return [
        {"role": "system", "content": tutor_instructions(classroom)},
        {"role": "user", "content": question},
    ]


def build_fixture(out: Path, seed: int) -> dict:
    from inference.engine import DraftJob, load_engine

    engine = load_engine()
    chosen = random.Random(seed).sample(QUESTIONS, PAIRS)
    prompts = [prompt_for(lang, subject, q) for lang, subject, q, _ in chosen]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        drafts = list(pool.map(lambda p: engine.draft(DraftJob(messages=p, max_new_tokens=96)).text, prompts))
    seconds = time.monotonic() - started
    rows = []
    for i, ((lang, subject, _q, _a), prompt, draft) in enumerate(zip(chosen, prompts, drafts, strict=True)):
        day = f"2026-{9 + i // 30:02d}-{1 + i % 30:02d}"
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": teacher_rewrite(lang, subject)}],
                "rejected": [{"role": "assistant", "content": draft.strip() or "…"}],
                "day": day,
                "model": "local",
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "dpo.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    card = {"name": "fixture: simulated teacher edits", "counts": {"dpo.jsonl": len(rows)}, "seed": seed}
    card["date_range"] = [rows[0]["day"], rows[-1]["day"]]
    card["drafting_models"] = {engine.model_name: len(rows)}
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return {"pairs": len(rows), "draft_seconds": round(seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "var" / "bench-finetune"))
    parser.add_argument("--steps", default="fixture,train,evaluate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=90.0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    steps = args.steps.split(",")
    figures: dict = {"machine": f"{os.cpu_count()} CPUs", "nice": os.nice(0)}
    if "fixture" in steps:
        figures["fixture"] = build_fixture(out / "dataset", args.seed)
        print("fixture:", figures["fixture"], flush=True)
    model_folder = None
    if "train" in steps:
        from inference.finetune import FinetuneSettings, finetune

        started = time.monotonic()
        result = finetune(
            dataset=out / "dataset",
            out_dir=out / "models",
            settings=FinetuneSettings(seed=args.seed, max_seconds=args.max_minutes * 60, threads=args.threads),
            log=lambda line: print(line, flush=True),
        )
        figures["train"] = {
            "train_seconds": result.seconds,
            "wall_seconds": round(time.monotonic() - started, 1),
            "pairs": result.pairs,
            "held_out": result.held_out,
            "steps": result.steps,
            "losses": result.losses,
            "folder": result.folder,
            "reused": result.reused,
        }
        model_folder = result.folder
        print("train:", json.dumps(figures["train"]), flush=True)
    if "evaluate" in steps:
        from inference.evaluate import evaluate, table

        if model_folder is None:
            model_folder = str(sorted((out / "models").glob("*-dpo-*"))[-1])
        report = evaluate(dataset=out / "dataset", candidate=model_folder)
        print(table(report), flush=True)
        figures["evaluate"] = report
    figures["how"] = "bench/finetune.py: " + " ".join(sys.argv[1:])
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
