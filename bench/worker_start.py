"""How long the real `manage.py worker` takes from start to "ready to take drafts".

Cold: an empty model cache (TUTOR_MODEL_CACHE in a new temporary folder), so the first
start converts the GGUF file and calibrates the kernels, as on a school's first day.
Warm: the same cache again, as on every later start. Each is the wall time from starting
the command to its drafting worker's log line "ready to take drafts" (the Celery process
then consumes its queue); the model's own loading time, from the worker's log, is shown
beside it.

    python bench/worker_start.py            # 1 cold start, 3 warm ones
    python bench/worker_start.py --warm 1   # quicker

It uses the Redis at REDIS_URL (default redis://127.0.0.1:6379/0) with a queue of its
own, and touches no database. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "ready to take drafts"


def start_once(cache: str, label: str) -> dict:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tutor.settings",
        TUTOR_MODEL_CACHE=cache,
        CELERY_QUEUE=f"bench-worker-start-{os.getpid()}",
        CHANNELS_PREFIX=f"bench-worker-start-{os.getpid()}",
        TUTOR_GROUP_SIMILARITY="0",  # the similarity model loads in the background anyway
        PYTHONUNBUFFERED="1",
    )
    log = Path(cache) / f"{label}.log"
    with open(log, "w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--loglevel=WARNING"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while READY not in log.read_text(errors="replace"):
                if proc.poll() is not None:
                    raise SystemExit(f"the worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
                if time.monotonic() - started > 1800:
                    raise SystemExit("no ready worker after 30 minutes")
                time.sleep(0.1)
            ready_s = time.monotonic() - started
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(120)
    text = log.read_text(errors="replace")
    loaded = re.search(r"ready in ([\d.]+) s \((cold|warm) start\)", text)
    return {
        "label": label,
        "ready_s": round(ready_s, 1),
        "model_load_s": float(loaded.group(1)) if loaded else None,
        "converted": "Converted in" in text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm", type=int, default=3, help="warm starts after the cold one")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"CPUs: {os.cpu_count()}; load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    with tempfile.TemporaryDirectory(prefix="tutor-bench-cache-") as cache:
        cold = start_once(cache, "cold")
        print(
            f"cold start (converts the model): ready in {cold['ready_s']} s (model loaded in {cold['model_load_s']} s)"
        )
        warm = []
        for n in range(args.warm):
            warm.append(start_once(cache, f"warm-{n}"))
            print(
                f"warm start {n + 1}: ready in {warm[-1]['ready_s']} s (model loaded in {warm[-1]['model_load_s']} s)"
            )
    assert cold["converted"] and not any(w["converted"] for w in warm), "the cache must make later starts warm"
    summary = {
        "cpus": os.cpu_count(),
        "load_average_1min": round(load[0], 1),
        "cold_ready_s": cold["ready_s"],
        "cold_model_load_s": cold["model_load_s"],
        "warm_ready_s_median": statistics.median(w["ready_s"] for w in warm) if warm else None,
        "warm_model_load_s_median": statistics.median(w["model_load_s"] for w in warm if w["model_load_s"])
        if warm
        else None,
        "warm_runs": len(warm),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
