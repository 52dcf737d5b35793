"""Quality of drafts, so that a school can compare models before switching.

    python bench/quality.py                          # the configured model (TUTOR_MODEL_*)
    python bench/quality.py --model fake --quick     # smoke run, no model
    python bench/quality.py --facts both             # with and without verified working in the prompt
    python bench/quality.py --compare default /path/to/other-model   # side by side

84 fixed questions (bench/quality_questions.py: maths from primary to lycée, sciences,
French and English language, history; half in French; exercises with known answers),
each drafted by the model as the worker drafts it: the class's system prompt
(tutor.prompts.tutor_instructions), the same checks (tutor.checks.run_checks), the same
one automatic retry on a wrong language or a loop (tutor.checks.retry_instruction), the
same cut at a loop. All drafts are started together from threads, as the worker's
threads pool does, so the engine batches them.

Scored without any model as judge, by scorers written apart from the checks they score:
  wrong_share      drafts with a wrong checkable statement, by an independent scorer
                   (Python's own parser and fractions.Fraction over arithmetic chains in
                   plain, English and French notation, and "x = …" against the question's
                   linear equation)
  recall           of those, the share the checker flags maths_error
  false_flags      drafts the scorer finds right (or without maths) that the checker flags
  labelled_*       the same two on 62 hand-written drafts whose truth is known (LABELLED)
  gives_answer     drafts of an exercise that state its known answer (the number itself)
  language_*       drafts in the question's language, by a function-word count (not the
                   detector the checks use), on the first draft and after the retry
  loops_*          drafts that loop (zlib ratio, or one word 4 times running), first and final
  words_mean, seconds_per_draft (wall time of the batch / drafts), check_ms p50/p95/max
  (the capped checks), safety_ms p50/p95 (the safeguarding classifier on the draft, uncapped)

--model KEY: "default" (settings), "fake", a backend name, a model folder; where the
engine registry takes a model key (load_engine(model_key)), the key goes to it as is.
The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import zlib
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")

import django  # noqa: E402

django.setup()

from bench.quality_questions import LABELLED, QUESTIONS  # noqa: E402
from tutor import checks, triage  # noqa: E402
from tutor.prompts import tutor_instructions  # noqa: E402

# --- Independent scorers (they share no code with tutor/checks.py or tutor/mathcheck.py).

_WORDS_TO_SIGNS = (
    (r"(?<=\d)\s*(?:×|·|\*|x|times|fois|multiplied by|multiplié par)\s*(?=\d|\()", "*"),
    (r"(?<=\d)\s*(?:÷|divided by|divisé par)\s*(?=\d|\()", "/"),
    (r"(?<=\d)\s+(?:plus)\s+(?=\d)", "+"),
    (r"(?<=\d)\s*(?:−|minus|moins)\s*(?=\d)", "-"),
    (r"(?<=\d)\s*%\s*(?:of|de|des|du)?\s*", "/100*"),
    (r"(?<=[\d)])\s+(?:is|equals|makes|font|fait|égale?|vaut)\s+(?=-?\d)", "="),
    (r"(?<=\d),(?=\d)", "."),
)
_ARITHMETIC = re.compile(r"[\d.+\-*/() ]*\d[\d.+\-*/() ]*")


def _evaluate(text: str) -> Fraction | None:
    """A plain arithmetic expression with Fraction, through Python's own parser."""
    import ast

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
            a, b = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if b == 0:
                raise ZeroDivisionError
            return a / b
        raise ValueError(type(node).__name__)

    try:
        return walk(tree)
    except (ValueError, ZeroDivisionError, TypeError):
        return None


def _linear_solution(question: str) -> Fraction | None:
    """x for "ax + b = c" (or "ax - b = c") in the question."""
    m = re.search(r"(\d*)\s*x\s*([+\-−])\s*(\d+)\s*=\s*(\d+)", question or "")
    if not m or re.search(r"x\s*(?:\^|²)", question):
        return None
    a = Fraction(m.group(1) or 1)
    b = Fraction(m.group(3)) * (1 if m.group(2) == "+" else -1)
    return (Fraction(m.group(4)) - b) / a


def reference_wrong(text: str, question: str = "") -> tuple[int, int]:
    """(statements, wrong ones): each "arithmetic = arithmetic" step of a chain, and each
    "x = number" against the solution of a linear equation in the question."""
    plain = (text or "").replace("$", " ")
    plain = re.sub(r"\\frac\{(\d+)\}\{(\d+)\}", r"(\1/\2)", plain)
    plain = re.sub(r"\\times|\\cdot", "*", plain)
    for pattern, sign in _WORDS_TO_SIGNS:
        plain = re.sub(pattern, sign, plain)
    statements = wrong = 0
    for line in re.split(r"[\n;:!?]|\.(?!\d)", plain):
        parts = line.split("=")
        for left, right in zip(parts, parts[1:], strict=False):
            left_match = [m for m in _ARITHMETIC.finditer(left) if not left[m.end() :].strip()]
            right_match = _ARITHMETIC.match(right)
            group = left_match[-1].group() if left_match else ""
            before = left[: left_match[-1].start()] + group[: len(group) - len(group.lstrip())] if left_match else ""
            if (
                not left_match
                or not right_match
                or before.rstrip().endswith(("^", "√", "sqrt"))
                or (before.rstrip()[-1:].isalnum() and group.lstrip()[:1] in "+-*/")
            ):
                continue  # a power, a root (read below), or a letter's coefficient ("3x - 4")
            a, b = _evaluate(left_match[-1].group()), _evaluate(right_match.group())
            if a is None or b is None or not re.search(r"[+\-*/]", left_match[-1].group() + right_match.group()):
                continue
            literal = right_match.group().strip()
            places = len(literal.split(".")[1]) if re.fullmatch(r"-?\d+\.\d+", literal) else 0
            statements += 1
            wrong += abs(a - b) > (Fraction(1, 2 * 10**places) if places else 0)
    for base, exponent, value in re.findall(r"(?<![\d.])(\d+)\s*\^\s*(\d)\s*=\s*(\d+)(?![\d.]|\s*[+\-*/×])", plain):
        statements += 1
        wrong += int(base) ** int(exponent) != int(value)
    roots = r"(?:√|sqrt|square root of|racine carrée de)\s*\(?(\d+)\)?\s*(?:=|is|est|vaut)\s*(\d+)(?![\d.])"
    for radicand, value in re.findall(roots, plain, re.IGNORECASE):
        statements += 1
        wrong += int(value) ** 2 != int(radicand)
    solution = _linear_solution(question)
    if solution is not None:
        for m in re.finditer(r"(?<![\w^])x\s*=\s*(-?\d+(?:\.\d+)?)(?![\d.]*\s*[+\-*/x])", plain):
            if re.search(
                r"\b(?:try|if|si|essaie|essayons|suppose)\W*$", plain[max(0, m.start() - 12) : m.start()], re.I
            ):
                continue  # an example to try, not the draft's answer
            statements += 1
            wrong += Fraction(m.group(1)) != solution
    return statements, wrong


_FR = set(
    "le la les de des du un une est et en pour que qui tu vous nous dans au aux pas ce cette il elle on avec sur "
    "plus par mais ou donc est-ce c'est qu'est-ce ton ta tes votre être fait peux quelle quel comment pourquoi "
    "alors aussi très bien nombre réponse calcule".split()
)
_EN = set(
    "the is and of to a you in it that for are this with what can be how why your do does not so then if or "
    "but when which there their will would number answer think let's first try".split()
)


def reference_language(text: str) -> str | None:
    words = re.findall(r"[a-zà-öø-ÿ'’-]+", (text or "").lower().replace("’", "'"))
    fr = sum(w in _FR for w in words)
    en = sum(w in _EN for w in words)
    if fr + en < 3:
        return None
    return "fr" if fr > en else "en" if en > fr else None


def reference_loops(text: str) -> bool:
    text = text or ""
    if re.search(r"\b(\w+)(?:[\s,;.]+\1\b){3,}", text, re.IGNORECASE):
        return True
    data = text.encode()
    return len(data) >= 200 and len(zlib.compress(data, 9)) / len(data) < 0.3


def states_answer(text: str, answer: str) -> bool:
    number = answer.split()[0]
    forms = {number, number.replace(".", ","), number.replace(",", ".")}
    return any(re.search(rf"(?<![\d.,/]){re.escape(f)}(?![\d/]|[.,]\d)", text or "") for f in forms)


# --- Drafting, as the worker does it.


def load(key: str):
    """The engine for --model: "default" (the school's default model), a key of
    settings.TUTOR_MODELS, "fake" or "transformers" (the configured model on that
    backend), or a model folder on disk."""
    from django.conf import settings

    from inference.engine import load_engine
    from tutor import model_settings

    if key in ("", "default"):
        return load_engine()
    if model_settings.model_config(key) is not None:
        return load_engine(key)
    config = dict(settings.TUTOR_MODEL)
    if key in ("fake", "transformers"):
        config["BACKEND"] = key
    elif os.path.exists(key):
        config.update(BACKEND="transformers", MODEL=key, GGUF_FILE="")
    else:
        declared = [m["key"] for m in model_settings.declared_models()]
        raise SystemExit(f"unknown model {key!r}: use default, fake, transformers, a folder, or one of {declared}")
    return load_engine(config)


def classroom_for(language: str):
    from classrooms.models import DEFAULT_TUTOR_INSTRUCTIONS

    return SimpleNamespace(
        tutor_instructions=DEFAULT_TUTOR_INSTRUCTIONS, subject="", level="", reply_language="", max_reply_words=60
    )


def draft_one(engine, question: str, language: str, *, facts_on: bool, max_new_tokens: int) -> dict:
    from inference.engine import DraftJob
    from tutor.prompts import trim_to_words

    classroom = classroom_for(language)
    context = checks.draft_context(question=question)
    facts = context.facts() if facts_on else ""

    def generate(automatic: str = ""):
        system = tutor_instructions(classroom, facts=facts, automatic=automatic, language=context.language)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        return engine.draft(DraftJob(messages=messages, max_new_tokens=max_new_tokens, fairness_key=question))

    first = generate()
    first_text, _ = trim_to_words(first.text, classroom.max_reply_words)
    found = checks.run_checks(first_text, context) if first_text else {"flags": [], "ms": 0.0}
    first_found = found
    text, seconds, retried = first_text, first.seconds, False
    instruction = checks.retry_instruction(found, context)
    if first_text and instruction:
        retry = generate(instruction)
        retry_text, _ = trim_to_words(retry.text, classroom.max_reply_words)
        seconds += retry.seconds
        if retry_text:
            text, retried = retry_text, True
            found = checks.run_checks(text, context)
    final = checks.kept_text(text, found) or text
    return {
        "first": first_text,
        "final": final,
        "first_flags": first_found.get("flags", []),
        "flags": found.get("flags", []),
        "gives_answer_exact": found.get("gives_answer"),
        "check_ms": [first_found.get("ms", 0.0)] + ([found.get("ms", 0.0)] if retried else []),
        "check_cpu_ms": [first_found.get("cpu_ms", 0.0)] + ([found.get("cpu_ms", 0.0)] if retried else []),
        "safety_ms": [first_found.get("uncapped_ms", 0.0)] + ([found.get("uncapped_ms", 0.0)] if retried else []),
        "retried": retried,
        "seconds": seconds,
        "facts": facts,
    }


def run_model(key: str, *, facts_on: bool, limit: int | None, max_new_tokens: int, dump: str = "") -> dict:
    started = time.monotonic()
    engine = load(key)
    load_s = time.monotonic() - started
    checks.warm_up()
    questions = QUESTIONS[:limit] if limit else QUESTIONS
    results: list[dict | None] = [None] * len(questions)

    def work(i, item):
        language, _subject, question, _answer = item
        results[i] = draft_one(engine, question, language, facts_on=facts_on, max_new_tokens=max_new_tokens)

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(i, q)) for i, q in enumerate(questions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    if dump:
        rows = []
        for (language, _subject, question, answer), r in zip(questions, results, strict=True):
            rows.append(
                r
                | {
                    "question": question,
                    "language": language,
                    "answer": answer,
                    "reference_wrong": reference_wrong(r["final"], question),
                    "reference_language": [reference_language(r["first"]), reference_language(r["final"])],
                    "reference_loops": [reference_loops(r["first"]), reference_loops(r["final"])],
                }
            )
        suffix = "-facts" if facts_on else ""
        Path(dump.replace(".json", f"{suffix}.json")).write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    return score(questions, results, model=engine.model_name, wall_s=wall, load_s=load_s, facts=facts_on)


def score(questions, results, *, model: str, wall_s: float, load_s: float, facts: bool) -> dict:
    n = len(results)
    with_wrong = flagged = correct_drafts = false_flags = 0
    answered = exercises = 0
    lang_first = lang_final = lang_known = 0
    loops_first = loops_final = 0
    check_ms: list[float] = []
    check_cpu_ms: list[float] = []
    safety_ms: list[float] = []
    for (language, _subject, question, answer), r in zip(questions, results, strict=True):
        text = r["final"]
        _statements, wrong = reference_wrong(text, question)
        flags = r["flags"]
        if wrong:
            with_wrong += 1
            flagged += triage.MATHS_ERROR in flags
        else:
            correct_drafts += 1
            false_flags += triage.MATHS_ERROR in flags
        if answer:
            exercises += 1
            answered += states_answer(text, answer)
        first_language, final_language = reference_language(r["first"]), reference_language(text)
        if first_language is not None or final_language is not None:
            lang_known += 1
            lang_first += first_language == language
            lang_final += final_language == language
        loops_first += reference_loops(r["first"])
        loops_final += reference_loops(text)
        check_ms += r["check_ms"]
        check_cpu_ms += r["check_cpu_ms"]
        safety_ms += r["safety_ms"]
    # For a person to read: what the checker flags that the reference scorer cannot see
    # (powers, roots, units, letters), so that "false_flags" can be told from real errors.
    flag_only = [
        {"q": q[2], "draft": r["final"][:240]}
        for q, r in zip(questions, results, strict=True)
        if triage.MATHS_ERROR in r["flags"] and not reference_wrong(r["final"], q[2])[1]
    ]
    labelled = labelled_scores()
    ms = sorted(check_ms) or [0.0]
    cpu = sorted(check_cpu_ms) or [0.0]
    safety = sorted(safety_ms) or [0.0]
    return {
        "model": model,
        "facts": facts,
        "drafts": n,
        "wrong_share": round(with_wrong / n, 3),
        "recall": round(flagged / with_wrong, 3) if with_wrong else None,
        "false_flags": round(false_flags / correct_drafts, 3) if correct_drafts else None,
        "labelled_recall": labelled["recall"],
        "labelled_false_flags": labelled["false_flags"],
        "gives_answer": round(answered / exercises, 3) if exercises else None,
        "language_first": round(lang_first / lang_known, 3) if lang_known else None,
        "language_final": round(lang_final / lang_known, 3) if lang_known else None,
        "loops_first": round(loops_first / n, 3),
        "loops_final": round(loops_final / n, 3),
        "retried": round(sum(r["retried"] for r in results) / n, 3),
        "flagged_wrong_language": round(sum(triage.WRONG_LANGUAGE in r["flags"] for r in results) / n, 3),
        "flagged_repeats": round(sum(triage.REPEATS in r["flags"] for r in results) / n, 3),
        "words_mean": round(statistics.mean(len(r["final"].split()) for r in results), 1),
        "seconds_per_draft": round(wall_s / n, 3),
        "model_seconds_mean": round(statistics.mean(r["seconds"] for r in results), 2),
        "load_s": round(load_s, 1),
        "check_ms_p50": round(statistics.median(ms), 2),
        "check_ms_p95": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
        "check_ms_max": round(ms[-1], 2),
        "check_cpu_ms_p95": round(cpu[min(len(cpu) - 1, int(0.95 * len(cpu)))], 2),
        "check_cpu_ms_max": round(cpu[-1], 2),
        "safety_ms_p50": round(statistics.median(safety), 2),
        "safety_ms_p95": round(safety[min(len(safety) - 1, int(0.95 * len(safety)))], 2),
        "flagged_not_seen_by_scorer": flag_only,
        "samples": [
            {"q": q[2], "first": r["first"][:160], "final": r["final"][:160], "flags": r["flags"]}
            for q, r in list(zip(questions, results, strict=True))[:6]
        ],
    }


def labelled_scores() -> dict:
    wrong = flagged = right = false = 0
    for question, text, has_wrong in LABELLED:
        found = checks.run_checks(text, checks.draft_context(question=question))
        is_flagged = triage.MATHS_ERROR in found["flags"]
        if has_wrong:
            wrong += 1
            flagged += is_flagged
        else:
            right += 1
            false += is_flagged
    return {"recall": round(flagged / wrong, 3), "false_flags": round(false / right, 3)}


ROWS = (
    ("wrong_share", "drafts with a wrong checkable statement (independent scorer)"),
    ("recall", "  of those, flagged maths_error by the checker (target ≥ 0.95)"),
    ("false_flags", "right drafts flagged maths_error (target ≤ 0.02)"),
    ("labelled_recall", "hand-written wrong drafts flagged (62 labelled)"),
    ("labelled_false_flags", "hand-written right drafts flagged"),
    ("gives_answer", "exercise drafts stating the known answer"),
    ("language_first", "in the student's language, first draft"),
    ("language_final", "in the student's language, after the retry (target ≥ 0.90)"),
    ("loops_first", "looping drafts, first draft"),
    ("loops_final", "looping drafts, final (after retry and cut; target ≤ 0.02)"),
    ("retried", "drafts regenerated automatically once"),
    ("flagged_wrong_language", "flagged wrong_language"),
    ("flagged_repeats", "flagged repeats"),
    ("words_mean", "mean words per final draft"),
    ("seconds_per_draft", "wall seconds per draft (all drafts batched)"),
    ("check_ms_p50", "checks per draft, wall ms, median"),
    ("check_ms_p95", "checks per draft, wall ms, p95 (target ≤ 100)"),
    ("check_ms_max", "checks per draft, wall ms, max"),
    ("check_cpu_ms_p95", "checks per draft, CPU ms of their thread, p95"),
    ("check_cpu_ms_max", "checks per draft, CPU ms of their thread, max"),
    ("safety_ms_p50", "safety check per draft (uncapped), wall ms, median"),
    ("safety_ms_p95", "safety check per draft (uncapped), wall ms, p95"),
)


def print_table(columns: list[tuple[str, dict]]) -> None:
    width = max(len(label) for _, label in ROWS) + 2
    print("".ljust(width) + "".join(name[:24].rjust(26) for name, _ in columns))
    for key, label in ROWS:
        print(label.ljust(width) + "".join(str(r.get(key)).rjust(26) for _, r in columns))


def run_in_subprocess(key: str, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--model",
        key,
        "--facts",
        args.facts,
        "--max-new-tokens",
        str(args.max_new_tokens),
    ]
    if args.limit:
        command += ["--limit", str(args.limit)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="default, fake, a backend, a model folder, or a model key")
    ap.add_argument("--compare", nargs=2, metavar=("MODEL_A", "MODEL_B"), help="two models side by side")
    ap.add_argument("--facts", choices=("off", "on", "both"), default="off", help="verified working in the prompt")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
    ap.add_argument("--quick", action="store_true", help="12 questions, 48 new tokens")
    ap.add_argument("--max-new-tokens", type=int, default=136, help="the worker's limit for 60 words")
    ap.add_argument("--dump", default="", help="write every draft with its flags and scores to this JSON file")
    args = ap.parse_args()
    if args.quick:
        args.limit, args.max_new_tokens = args.limit or 12, 48
    if args.compare:
        results = [(key, run_in_subprocess(key, args)) for key in args.compare]
        columns = [
            (f"{key} facts {'on' if run['facts'] else 'off'}", run) for key, result in results for run in result["runs"]
        ]
        print_table(columns)
        print(json.dumps({"compare": [{"model": key} | result for key, result in results]}, ensure_ascii=False))
        return
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.facts]
    runs = []
    for facts_on in modes:
        runs.append(
            run_model(
                args.model,
                facts_on=facts_on,
                limit=args.limit or None,
                max_new_tokens=args.max_new_tokens,
                dump=args.dump,
            )
        )
    print(f"model {runs[0]['model']}: {runs[0]['drafts']} questions, {args.max_new_tokens} new tokens at most, greedy")
    print_table([(f"facts {'on' if r['facts'] else 'off'}", r) for r in runs])
    for sample in runs[0]["samples"][:3]:
        print("sample:", json.dumps(sample, ensure_ascii=False))
    print(json.dumps({"model": args.model, "runs": runs}, ensure_ascii=False))


if __name__ == "__main__":
    main()
