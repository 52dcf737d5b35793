"""Benchmark of the drafting engine (the real model), one process, one run.

    python bench/drafting.py            # full: 1, 4, 8, 16, 32 concurrent drafts, 128 new tokens
    python bench/drafting.py --quick    # CI smoke: 1 and 4 concurrent, 32 new tokens

Every draft is greedy. Concurrent drafts are started together from N threads (like the
Celery threads pool), each with its own prompt from a fixed set of tutoring prompts.
Measures, printed as a table with how each number was measured; the LAST line printed is
one JSON object (keys: single_tps, c16_tps, c16_ttft_ms_p50, c16_ttft_ms_p95,
llamacpp_tps, batched_equals_alone, fidelity, worker_ready_s, worker_rss_mb, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutor.measures import percentile  # noqa: E402

SYSTEM = (
    "You are a patient tutor for secondary school students. Help the student think: ask guiding "
    "questions, explain step by step, and never just give the final answer."
)
QUESTIONS = [
    "Why do we have seasons on Earth?",
    "How do I find the area of a triangle?",
    "Can you explain what photosynthesis is and why plants need sunlight?",
    "What is the difference between weather and climate?",
    "I don't understand fractions. How do I add 1/3 and 1/4?",
    "Why did the Roman Empire fall?",
    "What is a verb? Give me some examples.",
    "How does the heart pump blood around the body?",
    "Explain Newton's first law of motion with an everyday example.",
    "What causes earthquakes?",
    "How do I solve the equation 3x + 5 = 20? I tried subtracting but got confused about what to do next.",
    "What is the water cycle?",
    "Why is the sky blue?",
    "How do vaccines help our bodies fight disease?",
    "What are prime numbers and how can I tell if a number is prime?",
    "Can you help me understand what a metaphor is in poetry?",
    "How do magnets work?",
    "What was the Industrial Revolution and why was it important?",
    "Explain how to calculate the average of a list of numbers.",
    "What is gravity and why don't we float away?",
    "How do I write a good topic sentence for an essay paragraph?",
    "What is the difference between an atom and a molecule?",
    "Why do some things float and others sink?",
    "How does a rainbow form?",
    "What is the Pythagorean theorem used for?",
    "Explain what DNA does in simple words.",
    "How do I convert a percentage into a decimal?",
    "What are the main parts of a plant cell?",
    "Why do we need to sleep?",
    "What is electricity and how does it get to my house?",
    "How do I find the perimeter of a rectangle with sides 4 cm and 7 cm?",
    "What is democracy?",
]
PROMPTS = [
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]
    if i % 3
    else [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Hi, I have homework questions."},
        {"role": "assistant", "content": "Of course! What are you working on?"},
        {"role": "user", "content": q},
    ]
    for i, q in enumerate(QUESTIONS)
]


def note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_concurrent(engine, n: int, new_tokens: int, offset: int = 0):
    from inference.engine import DraftJob

    drafts: list = [None] * n
    barrier = threading.Barrier(n + 1)

    def worker(i: int) -> None:
        barrier.wait()
        drafts[i] = engine.draft(
            DraftJob(
                messages=PROMPTS[(offset + i) % len(PROMPTS)], max_new_tokens=new_tokens, fairness_key=f"student-{i}"
            )
        )

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return drafts, wall


def llamacpp_single(gguf: Path, new_tokens: int, prompts: list, threads: int):
    """Greedy decode tok/s of llama.cpp on the same GGUF (decode only, prompt excluded)."""
    try:
        import llama_cpp
    except ImportError:
        return None, "llama_cpp not importable"
    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=1024, n_threads=threads, n_batch=512, verbose=False)
    rates = []
    for messages in prompts:
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        text += "<|im_start|>assistant\n"
        tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
        llm.reset()
        t_first = None
        n = 0
        for _tok in llm.generate(tokens, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
            n += 1
            if t_first is None:
                t_first = time.perf_counter()
            if n >= new_tokens:
                break
        if n > 1:
            rates.append((n - 1) / (time.perf_counter() - t_first))
    del llm
    return statistics.mean(
        rates
    ), f"llama-cpp-python {llama_cpp.__version__}, n_threads={threads}, {len(rates)} prompts"


def reference_fp32(folder: str, prompt_ids: list[list[int]], new_tokens: int) -> list[list[int]]:
    """Greedy continuations from plain transformers fp32, batch 1: the fidelity reference."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    model.eval()
    out = []
    with torch.inference_mode():
        for ids in prompt_ids:
            x = torch.tensor([ids])
            g = model.generate(
                input_ids=x,
                attention_mask=torch.ones_like(x),
                max_new_tokens=new_tokens,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )
            out.append(g[0, len(ids) :].tolist())
    del model
    return out


WORKER_SCRIPT = r"""
import json, os, sys, threading, time
sys.path.insert(0, {root!r})
config = json.loads({config!r})
from inference.backends.transformers_backend import TransformersEngine
from inference.engine import DraftJob
engine = TransformersEngine(config)
print("READY", flush=True)
prompts = json.loads({prompts!r})
ts = [threading.Thread(target=engine.draft, args=(DraftJob(messages=p, max_new_tokens={new}),)) for p in prompts]
for t in ts: t.start()
for t in ts: t.join()
status = open("/proc/self/status").read()
rss = int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) / 1024
hwm = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) / 1024
print("RSS", rss, hwm, flush=True)
"""


def fresh_worker(config: dict, new_tokens: int) -> tuple[float, float, float]:
    """Start a fresh Python process, time it until the engine is loaded (from the cache),
    then run a batch of 16 drafts in it and read its RSS."""
    script = WORKER_SCRIPT.format(
        root=str(ROOT), config=json.dumps(config), prompts=json.dumps(PROMPTS[:16]), new=new_tokens
    )
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    ready = rss = hwm = float("nan")
    for line in proc.stdout:
        if line.startswith("READY"):
            ready = time.perf_counter() - started
        elif line.startswith("RSS"):
            _, rss, hwm = line.split()
            rss, hwm = float(rss), float(hwm)
    proc.wait()
    return ready, rss, hwm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 and 4 concurrent, 32 new tokens (CI smoke)")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--quant", default="auto", help="auto (the engine default), none, fp16 or int8")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--cache-dir", default=os.environ.get("TUTOR_MODEL_CACHE", ""))
    args = ap.parse_args()

    import torch

    from inference.backends.transformers_backend import TransformersEngine
    from inference.convert import convert_gguf, resolve_source
    from inference.engine import DraftJob

    levels = [1, 4] if args.quick else [1, 4, 8, 16, 32]
    new = 32 if args.quick else 128
    n_alone = 4 if args.quick else 8
    config = {
        "BACKEND": "transformers",
        "MODEL": "",
        "GGUF_FILE": "",
        "DEVICE": "cpu",
        "DTYPE": args.dtype,
        "QUANT": args.quant,
        "MAX_NEW_TOKENS": new,
        "MAX_BATCH": args.max_batch,
    }
    if args.cache_dir:
        config["CACHE_DIR"] = args.cache_dir
    source = resolve_source(config)
    if source.gguf is not None:
        convert_gguf(source.gguf, config.get("CACHE_DIR"))  # one time; not part of worker_ready_s
    threads = torch.get_num_threads()

    rows: list[tuple[str, str, str]] = []
    started = time.perf_counter()
    engine = TransformersEngine(config)
    rows.append(("load in this process (from cache)", f"{time.perf_counter() - started:.1f} s", ""))
    engine.draft(DraftJob(messages=PROMPTS[0], max_new_tokens=4))  # warm-up

    # Alone: prompts one after the other (also the single-stream figure).
    alone = [engine.draft(DraftJob(messages=PROMPTS[i], max_new_tokens=new)) for i in range(n_alone)]
    decode_rates = [(d.new_tokens - 1) / (d.seconds - d.first_token_s) for d in alone if d.new_tokens > 1]
    single_tps = statistics.mean(decode_rates)
    note(f"single draft: {single_tps:.1f} tok/s")
    rows.append(
        (
            "single draft, decode tok/s",
            f"{single_tps:.1f}",
            f"mean over {len(alone)} prompts of (new_tokens-1)/(seconds-first_token_s)",
        )
    )
    rows.append(
        (
            "single draft, end-to-end tok/s",
            f"{sum(d.new_tokens for d in alone) / sum(d.seconds for d in alone):.1f}",
            "new tokens / seconds incl. prefill",
        )
    )
    rows.append(("single draft, TTFT ms p50", f"{statistics.median(d.first_token_s for d in alone) * 1e3:.0f}", ""))

    results = {}
    equal_checked = equal_ok = 0
    for n in levels:
        drafts, wall = run_concurrent(engine, n, new)
        total = sum(d.new_tokens for d in drafts)
        ttft = [d.first_token_s * 1e3 for d in drafts if d.first_token_s is not None]
        results[n] = {
            "tps": total / wall,
            "ttft50": percentile(ttft, 0.5, digits=None),
            "ttft95": percentile(ttft, 0.95, digits=None),
            "wall": wall,
            "tokens": total,
        }
        for i, d in enumerate(drafts):
            if i < n_alone:
                equal_checked += 1
                equal_ok += d.text == alone[i].text
        note(f"{n} concurrent: {results[n]['tps']:.1f} tok/s, TTFT p95 {results[n]['ttft95']:.0f} ms")
        rows.append(
            (
                f"{n:>2} concurrent: aggregate tok/s",
                f"{results[n]['tps']:.1f}",
                f"{total} new tokens / {wall:.1f} s wall, incl. prefill and queueing",
            )
        )
        rows.append(
            (
                f"{n:>2} concurrent: TTFT ms p50 / p95",
                f"{results[n]['ttft50']:.0f} / {results[n]['ttft95']:.0f}",
                "from draft() call to first token chosen",
            )
        )

    # Fidelity: greedy choice of the engine at each position of the fp32-transformers reference
    # continuation (teacher-forced, so one early flip doesn't count as a whole wrong reply).
    n_fid = 2 if args.quick else 8
    prompt_ids = [engine._encode(PROMPTS[i]) for i in range(n_fid)]
    ref = reference_fp32(engine.cache_folder or source.hf, prompt_ids, new)
    agree = total = 0
    free_same = 0
    for i, (ids, r) in enumerate(zip(prompt_ids, ref, strict=False)):
        choices = engine.teacher_forced_choices(ids, r)
        agree += sum(a == b for a, b in zip(choices, r, strict=False))
        total += len(r)
        stop = next((k for k, t in enumerate(r) if t in engine.stop_ids), len(r))
        free_same += engine._decode(r[:stop]).strip() == alone[i].text if i < len(alone) else 0
    fidelity = agree / total
    note(f"fidelity {fidelity:.4f}")
    rows.append(
        (
            "fidelity vs transformers fp32",
            f"{fidelity:.4f}",
            f"teacher-forced greedy agreement, {n_fid} prompts x {new} tokens; "
            f"free-running identical replies {free_same}/{min(n_fid, len(alone))}",
        )
    )
    engine.close()

    gguf = source.gguf
    llama_tps, how = llamacpp_single(gguf, new, PROMPTS[:3], threads) if gguf else (None, "no GGUF")
    rows.append(("llama.cpp single stream decode tok/s", "null" if llama_tps is None else f"{llama_tps:.1f}", how))

    ready, rss, hwm = fresh_worker(config, 64 if not args.quick else 16)
    rows.append(("worker ready (fresh process, from cache)", f"{ready:.1f} s", "spawn to engine loaded"))
    rows.append(("worker RSS after load + 16 drafts", f"{rss:.0f} MB", f"peak {hwm:.0f} MB"))

    print(
        f"\nDrafting benchmark: {engine.model_name}, {engine.settings['dtype']}, quant={engine.settings['quant']}, "
        f"{threads} threads, {os.cpu_count()} CPUs, torch {torch.__version__}, greedy, {new} new tokens max"
    )
    width = max(len(r[0]) for r in rows)
    for name, value, how_measured in rows:
        print(f"  {name:<{width}}  {value:>12}  {how_measured}")
    c16 = results.get(16, {})
    summary = {
        "single_tps": round(single_tps, 2),
        "c16_tps": round(c16["tps"], 2) if c16 else None,
        "c16_ttft_ms_p50": round(c16["ttft50"]) if c16 else None,
        "c16_ttft_ms_p95": round(c16["ttft95"]) if c16 else None,
        "llamacpp_tps": round(llama_tps, 2) if llama_tps else None,
        "batched_equals_alone": equal_ok == equal_checked,
        "batched_equal_count": f"{equal_ok}/{equal_checked}",
        "fidelity": round(fidelity, 4),
        "worker_ready_s": round(ready, 2),
        "worker_rss_mb": round(rss),
        "worker_peak_rss_mb": round(hwm),
        "tps_by_concurrency": {str(n): round(v["tps"], 2) for n, v in results.items()},
        "dtype": engine.settings["dtype"],
        "quant": engine.settings["quant"],
        "new_tokens": new,
        "quick": args.quick,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
