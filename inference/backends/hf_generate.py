"""Any causal language model that transformers loads (Qwen2/2.5/3, Llama 3.x with rope
scaling, Gemma 2/3, Phi-3, Mistral, ...), drafted with transformers' own generate().

Only the worker imports this module (it imports torch and transformers). Our own Llama
engine (transformers_backend.py) is faster where it applies; engine.py picks it first and
falls back to this one for every other architecture.

How it works
------------
* One decoding thread owns the model. `draft()` (any thread) tokenises, queues a request
  and waits. The decoding thread takes up to MAX_BATCH waiting requests (fairly across
  `fairness_key`, as the Llama engine admits them), left-pads them into one batch and runs
  generate() on it; requests that arrive meanwhile wait for the next batch.
  (transformers' continuous batching, generate_batch(), was not used: it targets CUDA
  paged attention and has no per-request cancel or streaming hook.)
* A stopping criterion, called by generate() after every step, is the per-step hook: it
  records each row's new token, ends a row at its end-of-turn token, its token limit, a
  loop (decoding.repeated_tail) or a cancel, and generate() then pads that row until the
  batch ends. A logits processor applies the repetition rules (decoding.Decoding, from
  each row's own generated tokens) and records the probability of each greedy choice.
* Callbacks run in the caller's thread, never the decoding thread: `on_text` is throttled
  to ~100 ms, `should_stop` polled every ~50 ms.
* Greedy decoding. Padding changes the arithmetic a little, so unlike the Llama engine a
  draft's text may differ slightly with its batch mates (settings: batch_invariant False).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING

from inference.backends.chat import ChatTokens, stop_token_ids
from inference.convert import INSTALL_HINT, configure_tokenizer, convert_gguf, resolve_source
from inference.engine import Draft, DraftJob, ModelUnavailable

if TYPE_CHECKING:
    from inference.convert import Progress

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from inference.backends.decoding import Decoding, repeated_tail  # noqa: E402
from inference.backends.transformers_backend import local_folder, resolve_device  # noqa: E402

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_DTYPES.update(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16)


class _Request:
    def __init__(self, job: DraftJob, prompt_ids: list[int], max_new: int):
        self.job = job
        self.key = job.fairness_key or ""
        self.prompt_ids = prompt_ids
        self.max_new = max_new
        self.tokens: list[int] = []
        self.probs: list[float] = []
        self.t0 = time.monotonic()
        self.t_first: float | None = None
        self.t_end: float | None = None
        self.cut_repeating = False
        self.cancel = False
        self.ended = False  # no more tokens (generate() may still be padding the row)
        self.done = False
        self.error: BaseException | None = None
        self.wake = threading.Event()


class _Rules(LogitsProcessor):
    """Repetition rules per row, then the greedy choice's probability per row."""

    def __init__(self, rows: list[_Request], decoding: Decoding):
        self.rows, self.decoding = rows, decoding

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float(), dim=-1)
        if self.decoding.changes_logits:
            for i, r in enumerate(self.rows):
                if not r.ended:
                    self.decoding.apply(scores[i], r.tokens)
        chosen = probs.gather(1, scores.argmax(dim=-1)[:, None])[:, 0].tolist()
        for r, p in zip(self.rows, chosen, strict=True):
            if not r.ended:
                r.probs.append(p)  # trimmed to len(tokens) by _Step
        return scores


class _Step(StoppingCriteria):
    """generate()'s per-step hook: each row's new token, and which rows are done."""

    def __init__(self, rows: list[_Request], stop_ids: frozenset[int], decoding: Decoding):
        self.rows, self.stop_ids, self.decoding = rows, stop_ids, decoding

    def __call__(self, input_ids: torch.LongTensor, scores: object, **kwargs: object) -> torch.BoolTensor:
        now = time.monotonic()
        done = []
        for r, t in zip(self.rows, input_ids[:, -1].tolist(), strict=True):
            if not r.ended:
                if r.t_first is None:
                    r.t_first = now
                if r.cancel or t in self.stop_ids:
                    r.ended = True
                else:
                    r.tokens.append(t)
                    cut = repeated_tail(r.tokens) if self.decoding.stop_repeats else 0
                    if cut:
                        del r.tokens[-cut:]
                        r.cut_repeating = r.ended = True
                    elif len(r.tokens) >= r.max_new:
                        r.ended = True
                del r.probs[len(r.tokens) :]
                if r.ended:  # its caller returns now; generate() pads the row until the batch ends
                    GenerateEngine._finish(r)
                else:
                    r.wake.set()
            done.append(r.ended)
        return torch.tensor(done, device=input_ids.device)


class GenerateEngine(ChatTokens):
    """See the module docstring. Config keys: MODEL, GGUF_FILE, DEVICE, DTYPE,
    MAX_NEW_TOKENS, MAX_BATCH, CACHE_DIR, THREADS, and decoding.Decoding's."""

    def __init__(self, config: dict, progress: Progress | None = None):
        started = time.monotonic()
        self.config = dict(config)
        progress = progress or (lambda phase, fraction=None: None)
        threads = int(config.get("THREADS") or 0) or (os.cpu_count() or 1)
        torch.set_num_threads(threads)
        self.device = resolve_device(str(config.get("DEVICE") or "auto"))
        dtype_name = str(config.get("DTYPE") or "auto").lower()
        if dtype_name == "auto":
            self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        elif dtype_name in _DTYPES:
            self.dtype = _DTYPES[dtype_name]
        else:
            raise ValueError(f"TUTOR_MODEL DTYPE={dtype_name!r}: use auto, float32, bfloat16 or float16.")
        self.max_new_default = int(config.get("MAX_NEW_TOKENS") or 160)
        self.max_batch = max(1, int(config.get("MAX_BATCH") or 32))
        self.decoding = Decoding.from_config(self.config)

        source = resolve_source(self.config)
        self.model_name = source.name
        if source.gguf is not None:
            folder = str(convert_gguf(source.gguf, self.config.get("CACHE_DIR"), log=log.warning, progress=progress))
        else:
            folder = local_folder(source.hf)
        self.folder = folder
        progress("reading", None)
        try:
            cfg = AutoConfig.from_pretrained(folder, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - an unknown model_type, a broken config.json
            raise ModelUnavailable(
                f"transformers {_version()} cannot read the model in {folder!r}: {exc}. A newer transformers may "
                f"know this architecture; otherwise serve the model with an OpenAI-compatible server "
                f"(TUTOR_MODEL_BACKEND=openai)."
            ) from exc
        try:
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=self.dtype)
        except Exception as exc:  # noqa: BLE001 - not a causal LM, missing weights, ...
            raise ModelUnavailable(
                f"transformers {_version()} cannot load {folder!r} (architecture "
                f"{getattr(cfg, 'model_type', '?')!r}) as a text-generating model: {exc}. {INSTALL_HINT}"
            ) from exc
        # The folder's own generation defaults (sampling, its repetition penalty over the
        # prompt and padding) are not ours: decoding is what decoding.Decoding says.
        model.generation_config = GenerationConfig()
        self.model = model.to(self.device).eval()
        try:
            tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except Exception as exc:  # noqa: BLE001
            raise ModelUnavailable(f"Cannot load the tokenizer of {folder!r}: {exc}. {INSTALL_HINT}") from exc
        if not getattr(tok, "chat_template", None):
            raise ModelUnavailable(
                f"The tokenizer of {folder!r} has no chat template: use an instruction-tuned (chat) model."
            )
        configure_tokenizer(tok)
        self.tokenizer = tok
        self.stop_ids = stop_token_ids(tok, cfg, folder)
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else min(self.stop_ids or {0})
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        self.context_window = int(getattr(text_cfg, "max_position_embeddings", 0) or 2048)
        self.architecture = getattr(cfg, "model_type", "?")
        self.settings = {
            "backend": "transformers",
            "engine": "generate",
            "architecture": self.architecture,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "batch_invariant": False,
            "greedy": True,
            **self.decoding.settings(),
            "max_batch": self.max_batch,
            "threads": threads,
        }
        self._cv = threading.Condition()
        self._waiting: OrderedDict[str, deque[_Request]] = OrderedDict()
        self._last_admit: dict[str, int] = {}
        self._admit_counter = itertools.count(1)
        self._closing = False
        self._thread: threading.Thread | None = None
        self._tok_lock = threading.Lock()
        self.batches = 0  # generate() calls (tests)
        self.max_rows_seen = 0
        self.load_seconds = time.monotonic() - started
        log.info(
            "Loaded %s (%s, %s, %s) in %.1f s",
            self.model_name,
            self.architecture,
            self.device,
            self.dtype,
            self.load_seconds,
        )

    # ------------------------------------------------------------------ public API
    def draft(self, job: DraftJob) -> Draft:
        prompt_ids, max_new = self._fit(job.messages, job.max_new_tokens)
        req = _Request(job, prompt_ids, max_new)
        with self._cv:
            if self._closing:
                raise RuntimeError("engine is closed")
            self._waiting.setdefault(req.key, deque()).append(req)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tutor-generate", daemon=True)
                self._thread.start()
            self._cv.notify()
        return self._follow(req, job, prompt_ids)

    def _cancel(self, req: _Request) -> None:
        """Flag the request; one still waiting for a batch leaves the queue at once."""
        req.cancel = True
        with self._cv:
            q = self._waiting.get(req.key)
            if q is not None and req in q:
                q.remove(req)
                if not q:
                    del self._waiting[req.key]
                self._finish(req)

    def close(self) -> None:
        """Stop the decoding thread (tests). Running drafts finish as cancelled."""
        with self._cv:
            self._closing = True
            for q in self._waiting.values():
                for r in q:
                    r.cancel = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # ------------------------------------------------------------------ scheduling
    def _take_batch_locked(self) -> list[_Request]:
        """Up to MAX_BATCH waiting requests: round-robin over keys, FIFO within a key."""
        batch: list[_Request] = []
        while self._waiting and len(batch) < self.max_batch:
            key = min(self._waiting, key=lambda k: self._last_admit.get(k, 0))
            q = self._waiting[key]
            req = q.popleft()
            if not q:
                del self._waiting[key]
            self._last_admit[key] = next(self._admit_counter)
            if req.cancel:
                self._finish(req)
            else:
                batch.append(req)
        if len(self._last_admit) > 4096:
            self._last_admit = {k: v for k, v in self._last_admit.items() if k in self._waiting}
        return batch

    @staticmethod
    def _finish(req: _Request, error: BaseException | None = None) -> None:
        req.error = error
        req.t_end = time.monotonic()
        req.done = True
        req.wake.set()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closing and not self._waiting:
                    self._cv.wait()
                if self._closing:
                    for r in [r for q in self._waiting.values() for r in q]:
                        r.cancel = True
                        self._finish(r)
                    self._waiting.clear()
                    return
                batch = self._take_batch_locked()
            if not batch:
                continue
            try:
                self._generate(batch)
                for r in batch:
                    if not r.done:
                        self._finish(r)
            except BaseException as exc:  # noqa: BLE001 - fail the batch, keep the thread alive
                log.exception("generate() failed; failing %d drafts", len(batch))
                for r in batch:
                    if not r.done:
                        self._finish(r, exc)

    def _generate(self, batch: list[_Request]) -> None:
        self.batches += 1
        self.max_rows_seen = max(self.max_rows_seen, len(batch))
        width = max(len(r.prompt_ids) for r in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):
            n = len(r.prompt_ids)
            ids[i, width - n :] = torch.tensor(r.prompt_ids)
            mask[i, width - n :] = 1
        closing = self
        rows = batch

        class _Closing(StoppingCriteria):
            def __call__(self, input_ids: torch.LongTensor, scores: object, **kwargs: object) -> torch.BoolTensor:
                if closing._closing:
                    for r in rows:
                        r.cancel = r.ended = True
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

        with torch.inference_mode():
            self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=max(r.max_new for r in batch),
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=None,  # our hook ends each row at its own stop token
                pad_token_id=self.pad_id,
                logits_processor=LogitsProcessorList([_Rules(batch, self.decoding)]),
                stopping_criteria=StoppingCriteriaList([_Closing(), _Step(batch, self.stop_ids, self.decoding)]),
            )


def _version() -> str:
    import transformers

    return transformers.__version__
