"""Benchmark of the drafting engine (the real model), one process, one run.

    python bench/drafting.py            # full: 1, 4, 8, 16, 32 concurrent drafts, 128 new tokens
    python bench/drafting.py --quick    # CI smoke: 1 and 4 concurrent, 32 new tokens
    python bench/drafting.py --backend openai --url http://127.0.0.1:8080/v1 --model NAME
                                        # the same figures, drafting through an OpenAI-compatible server
    nice -n 10 python bench/drafting.py --levels 1,16 --peer llama-server
                                        # the in-process engine against llama.cpp's llama-server
                                        # (--parallel 16, continuous batching) on the same GGUF

Every draft is greedy (temperature 0 on a server). Concurrent drafts are started together
from N threads (like the Celery threads pool), each with its own prompt from a fixed set of
tutoring prompts. Measures, printed as a table with how each number was measured; the LAST
line printed is one JSON object with the same keys for every backend (SUMMARY_KEYS: null
where a figure does not apply to the backend, e.g. fidelity through a server). With
--peer, it also holds "peer" (the same keys, for llama-server through the OpenAI backend),
"bare_client" (the same server at the top level through plain httpx2 streaming, no
engine) and "targets" (issue 11's ratios, each met or missed).

--peer llama-server needs the binary that bench/build_llama_server.sh builds (cached in
/work/cache/llama-server, or LLAMA_SERVER=path); without it the run says so and stops.
A full --peer run (128 new tokens, 2 rounds, fidelity, fresh worker) takes ~6 min on a
quiet 2-core machine. On a shared one, llama.cpp's threads wait for each other at every
operation, and one taken core drops its 2-thread speed several times over (single draft
0.8-9 tok/s at 2 threads, ~40 at 1, seen here at load average 5-10): then compare both
engines at --threads 1 (and --no-fidelity --no-worker keep a run near 4 min).
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


def prompt(i: int, tag: int | None = None) -> list[dict]:
    """PROMPTS[i]; with a tag, its last question is numbered ("Question 7: ..."): a new
    question after the same class instructions, as in a class, so that a server's prompt
    cache reuses the shared start of the prompt but cannot answer a repeated prompt whole."""
    messages = PROMPTS[i % len(PROMPTS)]
    if tag is None:
        return messages
    *head, last = messages
    return [*head, dict(last, content=f"Question {tag}: {last['content']}")]


def run_concurrent(engine, n: int, new_tokens: int, offset: int = 0, tag_base: int | None = None):
    from inference.engine import DraftJob

    drafts: list = [None] * n
    barrier = threading.Barrier(n + 1)

    def worker(i: int) -> None:
        barrier.wait()
        drafts[i] = engine.draft(
            DraftJob(
                messages=prompt(offset + i, None if tag_base is None else tag_base + i),
                max_new_tokens=new_tokens,
                fairness_key=f"student-{i}",
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
from inference.engine import DraftJob, engine_for_config
engine = engine_for_config(config)
print("READY", flush=True)
prompts = json.loads({prompts!r})
ts = [threading.Thread(target=engine.draft, args=(DraftJob(messages=p, max_new_tokens={new}),)) for p in prompts]
for t in ts: t.start()
for t in ts: t.join()
status = open("/proc/self/status").read()
rss = int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) / 1024
hwm = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) / 1024
print("RSS", rss, hwm, "torch" in sys.modules, flush=True)
"""


def fresh_worker(config: dict, new_tokens: int) -> tuple[float, float, float, bool | None]:
    """Start a fresh Python process, time it until the engine is loaded (from the cache, or
    connected to its server), then run a batch of 16 drafts in it and read its RSS and
    whether it imported torch."""
    script = WORKER_SCRIPT.format(
        root=str(ROOT), config=json.dumps(config), prompts=json.dumps(PROMPTS[:16]), new=new_tokens
    )
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    ready = rss = hwm = float("nan")
    torch_loaded = None
    for line in proc.stdout:
        if line.startswith("READY"):
            ready = time.perf_counter() - started
        elif line.startswith("RSS"):
            _, rss, hwm, torch_loaded = line.split()
            rss, hwm, torch_loaded = float(rss), float(hwm), torch_loaded == "True"
    proc.wait()
    return ready, rss, hwm, torch_loaded


# The keys of the JSON line, the same for every backend (null where one does not apply).
SUMMARY_KEYS = (
    "backend",
    "model",
    "threads",
    "single_tps",
    "single_e2e_tps",
    "single_ttft_ms",
    "c1_tps",
    "c16_tps",
    "c16_ttft_ms_p50",
    "c16_ttft_ms_p95",
    "tps_by_concurrency",
    "ttft_ms_p95_by_concurrency",
    "tokens_by_concurrency",
    "llamacpp_tps",
    "batched_equals_alone",
    "batched_equal_count",
    "fidelity",
    "worker_ready_s",
    "worker_rss_mb",
    "worker_peak_rss_mb",
    "worker_imports_torch",
    "dtype",
    "quant",
    "new_tokens",
    "quick",
    "load_avg",
    "rounds",
    "c16_tps_rounds",
)


def load_avg() -> float:
    """The machine's 1-minute load average (other people's work on a shared machine)."""
    return round(os.getloadavg()[0], 2)


def measure(engine, levels: list[int], new_tokens: int, n_alone: int, tag_base: int | None = None) -> dict:
    """The figures every backend gets: drafts alone, then at each concurrency level.
    tag_base: number the questions from there (see prompt()); a concurrent draft i < n_alone
    asks what alone draft i asked (batched equals alone), the others are new."""
    from inference.engine import DraftJob

    engine.draft(DraftJob(messages=PROMPTS[0], max_new_tokens=4))  # warm-up
    load_before = load_avg()
    # Alone: prompts one after the other (also the single-stream figure).
    tag = (lambda i: None) if tag_base is None else (lambda i: tag_base + i)
    alone = [engine.draft(DraftJob(messages=prompt(i, tag(i)), max_new_tokens=new_tokens)) for i in range(n_alone)]
    decode_rates = [
        (d.new_tokens - 1) / (d.seconds - d.first_token_s)
        for d in alone
        if d.new_tokens > 1 and d.first_token_s is not None and d.seconds > d.first_token_s
    ]
    figures = {
        "alone": alone,
        "single_tps": statistics.mean(decode_rates),
        "single_e2e_tps": sum(d.new_tokens for d in alone) / sum(d.seconds for d in alone),
        "single_ttft_ms": statistics.median(d.first_token_s for d in alone if d.first_token_s is not None) * 1e3,
        "levels": {},
        "equal_ok": 0,
        "equal_checked": 0,
    }
    note(f"{engine.model_name}: single draft {figures['single_tps']:.1f} tok/s")
    for n in levels:
        drafts, wall = run_concurrent(engine, n, new_tokens, tag_base=tag_base)
        total = sum(d.new_tokens for d in drafts)
        ttft = [d.first_token_s * 1e3 for d in drafts if d.first_token_s is not None]
        figures["levels"][n] = {
            "tps": total / wall,
            "ttft50": percentile(ttft, 0.5, digits=None),
            "ttft95": percentile(ttft, 0.95, digits=None),
            "wall": wall,
            "tokens": total,
        }
        for i, d in enumerate(drafts[:n_alone]):
            figures["equal_checked"] += 1
            figures["equal_ok"] += d.text == alone[i].text
        level = figures["levels"][n]
        note(f"{engine.model_name}: {n} concurrent: {level['tps']:.1f} tok/s, TTFT p95 {level['ttft95']:.0f} ms")
    figures["load_avg"] = [load_before, load_avg()]
    return figures


def combine(runs: list[dict]) -> dict:
    """Rounds of measure() as one: the median of each figure over the rounds (rounds
    alternate with the peer's, so that a change in the machine's load falls on both)."""
    if len(runs) == 1:
        return dict(runs[0], rounds=1, c16_tps_rounds=[runs[0]["levels"][16]["tps"]] if 16 in runs[0]["levels"] else [])
    med = statistics.median
    levels = {
        n: {
            "tps": med(r["levels"][n]["tps"] for r in runs),
            "ttft50": med(r["levels"][n]["ttft50"] for r in runs),
            "ttft95": med(r["levels"][n]["ttft95"] for r in runs),
            "wall": sum(r["levels"][n]["wall"] for r in runs),
            "tokens": sum(r["levels"][n]["tokens"] for r in runs),
        }
        for n in runs[0]["levels"]
    }
    return {
        "alone": runs[0]["alone"],
        "single_tps": med(r["single_tps"] for r in runs),
        "single_e2e_tps": med(r["single_e2e_tps"] for r in runs),
        "single_ttft_ms": med(r["single_ttft_ms"] for r in runs),
        "levels": levels,
        "equal_ok": sum(r["equal_ok"] for r in runs),
        "equal_checked": sum(r["equal_checked"] for r in runs),
        "load_avg": [runs[0]["load_avg"][0], runs[-1]["load_avg"][1]],
        "rounds": len(runs),
        "c16_tps_rounds": [r["levels"][16]["tps"] for r in runs if 16 in r["levels"]],
    }


def figure_rows(figures: dict, label: str = "") -> list[tuple[str, str, str]]:
    alone = figures["alone"]
    rows = [
        (
            f"{label}single draft, decode tok/s",
            f"{figures['single_tps']:.1f}",
            f"mean over {len(alone)} prompts of (new_tokens-1)/(seconds-first_token_s)",
        ),
        (
            f"{label}single draft, end-to-end tok/s",
            f"{figures['single_e2e_tps']:.1f}",
            "new tokens / seconds incl. prefill",
        ),
        (f"{label}single draft, TTFT ms p50", f"{figures['single_ttft_ms']:.0f}", ""),
    ]
    for n, level in figures["levels"].items():
        rows.append(
            (
                f"{label}{n:>2} concurrent: aggregate tok/s",
                f"{level['tps']:.1f}",
                f"{level['tokens']} new tokens / {level['wall']:.1f} s wall, incl. prefill and queueing",
            )
        )
        rows.append(
            (
                f"{label}{n:>2} concurrent: TTFT ms p50 / p95",
                f"{level['ttft50']:.0f} / {level['ttft95']:.0f}",
                "from draft() call to first token chosen (first text received, through a server)",
            )
        )
    return rows


def summary(engine, figures: dict, extras: dict, *, backend: str, threads: int | None, new_tokens: int, quick: bool):
    """The JSON object: SUMMARY_KEYS, in that order, for any backend."""
    levels = figures["levels"]
    c1, c16 = levels.get(1), levels.get(16)
    out = {
        "backend": backend,
        "model": engine.model_name,
        "threads": threads,
        "single_tps": round(figures["single_tps"], 2),
        "single_e2e_tps": round(figures["single_e2e_tps"], 2),
        "single_ttft_ms": round(figures["single_ttft_ms"]),
        "c1_tps": round(c1["tps"], 2) if c1 else None,
        "c16_tps": round(c16["tps"], 2) if c16 else None,
        "c16_ttft_ms_p50": round(c16["ttft50"]) if c16 else None,
        "c16_ttft_ms_p95": round(c16["ttft95"]) if c16 else None,
        "tps_by_concurrency": {str(n): round(v["tps"], 2) for n, v in levels.items()},
        "ttft_ms_p95_by_concurrency": {str(n): round(v["ttft95"]) for n, v in levels.items()},
        "tokens_by_concurrency": {str(n): v["tokens"] for n, v in levels.items()},
        "llamacpp_tps": None,
        "batched_equals_alone": figures["equal_ok"] == figures["equal_checked"],
        "batched_equal_count": f"{figures['equal_ok']}/{figures['equal_checked']}",
        "fidelity": None,
        "worker_ready_s": None,
        "worker_rss_mb": None,
        "worker_peak_rss_mb": None,
        "worker_imports_torch": None,
        "dtype": getattr(engine, "settings", {}).get("dtype"),
        "quant": getattr(engine, "settings", {}).get("quant"),
        "new_tokens": new_tokens,
        "quick": quick,
        "load_avg": figures["load_avg"],
        "rounds": figures["rounds"],
        "c16_tps_rounds": [round(t, 2) for t in figures["c16_tps_rounds"]],
    }
    out.update(extras)
    assert tuple(out) == SUMMARY_KEYS, set(out) ^ set(SUMMARY_KEYS)
    return out


def openai_config(url: str, model: str, max_batch: int, new_tokens: int) -> dict:
    return {
        "BACKEND": "openai",
        "BASE_URL": url,
        "MODEL": model,
        "MAX_BATCH": max_batch,
        "MAX_NEW_TOKENS": new_tokens,
        "TEMPERATURE": 0,  # greedy, as the in-process engine
        "FIRST_TOKEN_TIMEOUT": 120,
        "TOTAL_TIMEOUT": 600,
        "RETRIES": 0,  # a benchmark counts failures, it does not hide them
    }


# ---------------------------------------------------------------------- llama-server peer
LLAMA_SERVER_CACHE = Path(os.environ.get("LLAMA_SERVER_CACHE", "/work/cache/llama-server"))
PEER_PARALLEL = 16
PEER_CTX_PER_SLOT = 512  # the longest prompt here is ~120 tokens, plus 128 new


def llama_server_binary() -> Path | None:
    path = Path(os.environ.get("LLAMA_SERVER") or LLAMA_SERVER_CACHE / "build" / "bin" / "llama-server")
    return path if path.is_file() and os.access(path, os.X_OK) else None


class LlamaServer:
    """llama.cpp's server on the GGUF, on a free loopback port, for the length of a `with`.

    --parallel 16 slots with continuous batching (its default) and one KV cache shared by
    the slots (-kvu, what it picks itself when the slot count is automatic, as in Ollama).
    --no-repack: with GGML_NATIVE on a CPU that reports AMX, this llama.cpp sends matrix
    products to its AMX path, which dies with SIGSEGV on the first one on this VM; Q4_1
    weights are not repacked for any other path, so the flag costs nothing here."""

    def __init__(self, binary: Path, gguf: Path, threads: int, alias: str = "smollm2-gguf"):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.alias = alias
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.args = [
            str(binary),
            "-m",
            str(gguf),
            "--alias",
            alias,
            "--parallel",
            str(PEER_PARALLEL),
            "--kv-unified",
            "--ctx-size",
            str(PEER_PARALLEL * PEER_CTX_PER_SLOT),
            "--threads",
            str(threads),
            "--threads-batch",
            str(threads),
            "--no-repack",
            "--no-webui",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stderr.split("\n")[0]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LlamaServer:
        import tempfile

        import httpx2

        self.log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"llama-server exited with {self.proc.returncode}; its log: {self.log.name}")
            try:
                if httpx2.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return self
            except httpx2.HTTPError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise SystemExit(f"llama-server did not become ready within 120 s; its log: {self.log.name}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def _bare_round(client, bodies: list[dict]) -> tuple[float, list[float], int]:
    """One round of plain streaming requests, all started together: (aggregate tok/s,
    TTFTs in ms, tokens). Tokens are the server's own usage count, as the engine reads."""
    import asyncio

    async def one(body: dict) -> tuple[float | None, int]:
        sent = time.perf_counter()
        first, tokens = None, 0
        async with client.stream("POST", "chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if isinstance(chunk.get("usage"), dict):
                    tokens = int(chunk["usage"].get("completion_tokens") or 0)
                choices = chunk.get("choices") or []
                if first is None and choices and (choices[0].get("delta") or {}).get("content"):
                    first = (time.perf_counter() - sent) * 1e3
        return first, tokens

    started = time.perf_counter()
    results = await asyncio.gather(*(one(b) for b in bodies))
    wall = time.perf_counter() - started
    tokens = sum(t for _, t in results)
    return tokens / wall, [f for f, _ in results if f is not None], tokens


def bare_round(engine, n: int, new_tokens: int, tag_base: int) -> tuple[float, list[float], int]:
    """n concurrent streams from a bare client (plain httpx2 streaming, one event loop, no
    engine) to the OpenAI backend's server, sending the very requests the backend sends
    for the same prompts."""
    import asyncio

    import httpx2

    bodies = [engine._body(prompt(i, tag_base + i), new_tokens) for i in range(n)]
    openers = [engine._body(prompt(i, tag_base + 500 + i), 2) for i in range(n)]

    async def go() -> tuple[float, list[float], int]:
        limits = httpx2.Limits(max_connections=n + 2, max_keepalive_connections=n)
        async with httpx2.AsyncClient(base_url=engine.base_url + "/", timeout=600, limits=limits) as client:
            await _bare_round(client, openers)  # open the connections (other questions: nothing cached)
            return await _bare_round(client, bodies)

    return asyncio.run(go())


def backend_round(engine, n: int, new_tokens: int, tag_base: int) -> tuple[float, list[float], int]:
    """The same as bare_round, through the OpenAI backend (Engine.draft from n threads)."""
    drafts, wall = run_concurrent(engine, n, new_tokens, tag_base=tag_base)
    tokens = sum(d.new_tokens for d in drafts)
    return tokens / wall, [d.first_token_s * 1e3 for d in drafts if d.first_token_s is not None], tokens


def backend_overhead(
    through_backend: list[tuple[float, list[float], int]], bare: list[tuple[float, list[float], int]]
) -> dict:
    """The OpenAI backend's 16-concurrent rounds against the bare client's, alternated,
    each on new questions (the server's cache holds the class instructions only)."""
    import httpx2

    bare_tps = statistics.median(r[0] for r in bare)
    backend_tps = statistics.median(r[0] for r in through_backend)
    return {
        "concurrency": 16,
        "rounds": len(bare),
        "bare_tps": round(bare_tps, 2),
        "backend_tps": round(backend_tps, 2),
        "bare_tps_rounds": [round(r[0], 2) for r in bare],
        "backend_tps_rounds": [round(r[0], 2) for r in through_backend],
        "bare_ttft_ms_p95": round(statistics.median(percentile(r[1], 0.95, digits=None) for r in bare)),
        "backend_ttft_ms_p95": round(statistics.median(percentile(r[1], 0.95, digits=None) for r in through_backend)),
        "bare_tokens_rounds": [r[2] for r in bare],
        "backend_tokens_rounds": [r[2] for r in through_backend],
        "overhead": round(1 - backend_tps / bare_tps, 4),
        "client": f"httpx2 {httpx2.__version__} AsyncClient, streaming, one event loop, the backend's own request bodies",
    }


def targets(primary: dict, peer: dict, overhead: dict | None) -> dict:
    """Issue 11's targets, each with the figure measured in this run."""

    def ratio(a, b):
        return round(a / b, 3) if a is not None and b else None

    def entry(measured, target: float, *, at_least: bool, how: str) -> dict:
        met = None if measured is None else (measured >= target if at_least else measured <= target)
        return {"measured": measured, "target": f"{'>=' if at_least else '<='} {target}", "met": met, "how": how}

    return {
        "c16_tps_vs_llama_server": entry(
            ratio(primary["c16_tps"], peer["c16_tps"]),
            1.25,
            at_least=True,
            how="this engine's aggregate tok/s at 16 concurrent / llama-server --parallel 16's",
        ),
        "single_tps_vs_llama_server": entry(
            ratio(primary["single_tps"], peer["single_tps"]),
            0.67,
            at_least=True,
            how="decode tok/s of one draft alone, this engine / llama-server",
        ),
        "c16_ttft_ms_p95": entry(
            primary["c16_ttft_ms_p95"], 1000, at_least=False, how="this engine, 16 concurrent, ms"
        ),
        "openai_backend_overhead_c16": entry(
            overhead["overhead"] if overhead else None,
            0.05,
            at_least=False,
            how="1 - (OpenAI backend tok/s / bare client tok/s), same llama-server, 16 concurrent, median of rounds",
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 and 4 concurrent, 32 new tokens (CI smoke)")
    ap.add_argument("--backend", choices=("transformers", "openai"), default="transformers")
    ap.add_argument("--url", default="", help="openai: the server's base URL, e.g. http://127.0.0.1:8080/v1")
    ap.add_argument(
        "--model",
        default="",
        help="openai: the server's model name (empty: the only one it lists); "
        "transformers: a model folder or GGUF file (empty: the embedded model)",
    )
    ap.add_argument("--levels", default="", help="concurrency levels, e.g. 1,16 (default 1,4,8,16,32; quick 1,4)")
    ap.add_argument("--new-tokens", type=int, default=0, help="new tokens a draft (default 128; quick 32)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads, for this engine and llama-server alike")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--quant", default="auto", help="auto (the engine default), none, fp16 or int8")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--cache-dir", default=os.environ.get("TUTOR_MODEL_CACHE", ""))
    ap.add_argument("--no-fidelity", action="store_true", help="skip the fidelity check against fp32")
    ap.add_argument("--no-worker", action="store_true", help="skip the fresh worker's start and RSS")
    ap.add_argument(
        "--peer", choices=("llama-server",), default=None, help="also measure llama-server on the same GGUF"
    )
    ap.add_argument("--rounds", type=int, default=0, help="rounds of every measure, medians (default 1; --peer 2)")
    args = ap.parse_args()
    if args.backend == "openai" and not args.url:
        ap.error("--backend openai needs --url (the server's base URL, e.g. http://127.0.0.1:8080/v1)")
    if args.backend == "transformers" and args.url:
        ap.error("--url is for --backend openai")

    from inference.convert import convert_gguf, default_gguf_path, resolve_source
    from inference.engine import engine_for_config

    levels = [int(x) for x in args.levels.split(",") if x.strip()] or ([1, 4] if args.quick else [1, 4, 8, 16, 32])
    new = args.new_tokens or (32 if args.quick else 128)
    if args.peer and 16 not in levels:
        ap.error("--peer compares at 16 concurrent drafts: add 16 to --levels")
    n_alone = 4 if args.quick or args.peer else 8
    rounds = max(1, args.rounds or (2 if args.peer else 1))
    threads = args.threads or os.cpu_count() or 1

    binary = None
    if args.peer:
        binary = llama_server_binary()
        if binary is None:
            raise SystemExit(
                "--peer llama-server: no llama-server binary at "
                f"{LLAMA_SERVER_CACHE / 'build' / 'bin' / 'llama-server'} (or $LLAMA_SERVER). "
                "Build it once with bench/build_llama_server.sh (~20-25 min on 2 cores)."
            )

    source = None
    if args.backend == "transformers":
        config = {
            "BACKEND": "transformers",
            "MODEL": args.model,
            "GGUF_FILE": "",
            "DEVICE": "cpu",
            "DTYPE": args.dtype,
            "QUANT": args.quant,
            "MAX_NEW_TOKENS": new,
            "MAX_BATCH": args.max_batch,
            "THREADS": threads,
        }
        if args.cache_dir:
            config["CACHE_DIR"] = args.cache_dir
        source = resolve_source(config)
        if source.gguf is not None:
            convert_gguf(source.gguf, config.get("CACHE_DIR"))  # one time; not part of worker_ready_s
    else:
        config = openai_config(args.url, args.model, max(levels + [16]), new)
        threads = None  # the server's own
    started_run = time.perf_counter()

    rows: list[tuple[str, str, str]] = []
    started = time.perf_counter()
    engine = engine_for_config(config)
    rows.append(("load in this process", f"{time.perf_counter() - started:.1f} s", "from the cache, or connect"))
    # --peer: every round asks new questions (numbered from 100 * round), after the same
    # class instructions, of both engines alike.
    runs = [measure(engine, levels, new, n_alone, tag_base=100 if args.peer else None)]
    extras: dict = {}

    # The peer: rounds alternated with this engine's (each round: this engine, then the
    # peer through the OpenAI backend and the bare client, in turn first), so that both see
    # the same machine; each figure is the median over the rounds.
    peer = overhead = peer_how = None
    if args.peer:
        gguf = (source.gguf if source is not None else None) or default_gguf_path()
        with LlamaServer(binary, gguf, threads or os.cpu_count() or 1) as server:
            peer_how = f"{server.version}, {' '.join(server.args[1:])}"
            peer_engine = engine_for_config(openai_config(server.url, server.alias, max(levels + [16]), new))
            peer_runs, bare, through_backend = [], [], []
            for r in range(rounds):
                base = 100 * (r + 1)
                if r:
                    runs.append(measure(engine, levels, new, n_alone, tag_base=base))
                peer_runs.append(measure(peer_engine, levels, new, n_alone, tag_base=base))
                # The overhead: the backend and the bare client, in turn first, on new questions.
                if r % 2:
                    bare.append(bare_round(peer_engine, 16, new, 10_000 + base))
                through_backend.append(backend_round(peer_engine, 16, new, 20_000 + base))
                if not r % 2:
                    bare.append(bare_round(peer_engine, 16, new, 10_000 + base))
                note(
                    f"round {r + 1}/{rounds} at 16: bare client {bare[-1][0]:.1f} tok/s, "
                    f"backend {through_backend[-1][0]:.1f} tok/s"
                )
            peer_engine.close()
        peer_figures = combine(peer_runs)
        peer = summary(
            peer_engine,
            peer_figures,
            {},
            backend="openai (llama-server)",
            threads=threads or os.cpu_count(),
            new_tokens=new,
            quick=args.quick,
        )
        overhead = backend_overhead(through_backend, bare)
    else:
        runs += [measure(engine, levels, new, n_alone) for _ in range(rounds - 1)]
    figures = combine(runs)
    rounds_how = f" (median of {rounds} rounds)" if rounds > 1 else ""
    rows += figure_rows(figures, f"this engine{rounds_how}: " if args.peer else "")
    if peer:
        rows += figure_rows(peer_figures, f"llama-server{rounds_how}: ")
        rows.append(
            (
                "llama-server 16 concurrent: bare client / backend tok/s",
                f"{overhead['bare_tps']:.1f} / {overhead['backend_tps']:.1f}",
                f"median of {rounds} alternated rounds; overhead {overhead['overhead']:.1%}",
            )
        )

    if args.backend == "transformers":
        # Fidelity: greedy choice of the engine at each position of the fp32-transformers
        # reference continuation (teacher-forced, so one early flip doesn't count as a whole
        # wrong reply).
        if not args.no_fidelity:
            n_fid = 2 if args.quick else 8
            alone = figures["alone"]
            prompt_ids = [engine._encode(PROMPTS[i]) for i in range(n_fid)]
            ref = reference_fp32(engine.cache_folder or source.hf, prompt_ids, new)
            agree = total = free_same = 0
            for i, (ids, r) in enumerate(zip(prompt_ids, ref, strict=False)):
                choices = engine.teacher_forced_choices(ids, r)
                agree += sum(a == b for a, b in zip(choices, r, strict=False))
                total += len(r)
                stop = next((k for k, t in enumerate(r) if t in engine.stop_ids), len(r))
                free_same += engine._decode(r[:stop]).strip() == alone[i].text if i < len(alone) else 0
            extras["fidelity"] = round(agree / total, 4)
            note(f"fidelity {extras['fidelity']:.4f}")
            rows.append(
                (
                    "fidelity vs transformers fp32",
                    f"{extras['fidelity']:.4f}",
                    f"teacher-forced greedy agreement, {n_fid} prompts x {new} tokens; "
                    f"free-running identical replies {free_same}/{min(n_fid, len(alone))}",
                )
            )
        if source.gguf:
            llama_tps, how = llamacpp_single(source.gguf, new, PROMPTS[:3], threads)
            rows.append(
                ("llama.cpp single stream decode tok/s", "null" if llama_tps is None else f"{llama_tps:.1f}", how)
            )
            extras["llamacpp_tps"] = round(llama_tps, 2) if llama_tps else None
    engine.close()

    if not args.no_worker:
        ready, rss, hwm, torch_loaded = fresh_worker(config, 64 if not args.quick else 16)
        rows.append(("worker ready (fresh process)", f"{ready:.1f} s", "spawn to engine loaded (or connected)"))
        rows.append(("worker RSS after load + 16 drafts", f"{rss:.0f} MB", f"peak {hwm:.0f} MB, torch {torch_loaded}"))
        extras.update(
            worker_ready_s=round(ready, 2),
            worker_rss_mb=round(rss),
            worker_peak_rss_mb=round(hwm),
            worker_imports_torch=torch_loaded,
        )

    settings = getattr(engine, "settings", {})
    if args.backend == "transformers":
        import torch

        setup = f"{settings['dtype']}, quant={settings['quant']}, {threads} threads, torch {torch.__version__}"
    else:
        setup = f"through {args.url}"
    print(
        f"\nDrafting benchmark: {engine.model_name}, {setup}, {os.cpu_count()} CPUs, greedy, {new} new tokens max, "
        f"load average {figures['load_avg'][0]} .. {load_avg()}, {time.perf_counter() - started_run:.0f} s"
    )
    if peer_how:
        print(f"  peer: {peer_how}")
    width = max(len(r[0]) for r in rows)
    for name, value, how_measured in rows:
        print(f"  {name:<{width}}  {value:>12}  {how_measured}")
    result = summary(engine, figures, extras, backend=args.backend, threads=threads, new_tokens=new, quick=args.quick)
    if args.peer:
        result["peer"] = peer
        result["bare_client"] = overhead
        result["targets"] = targets(result, peer, overhead)
        result["peer_command"] = peer_how
        for name, t in result["targets"].items():
            state = "met" if t["met"] else "missed" if t["met"] is not None else "not measured"
            print(f"  target {name}: {t['measured']} (target {t['target']}): {state}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
