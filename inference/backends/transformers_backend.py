"""The real model: a Llama-architecture causal LM (default SmolLM2-135M-Instruct) run with
torch, with continuous batching across threads.

Only the worker imports this module (it imports torch and transformers).

How it works
------------
* Weights come from a safetensors folder (a GGUF file is converted once, see
  inference/convert.py), read directly and re-laid for a lean decoding loop of our own:
  fused q|k|v and gate|up matrices, RoPE tables precomputed, the matrices stored for the
  chosen kernel (QUANT: "auto" = fp16 weights with fp32 math on the CPU, "none" = fp32
  prepacked for oneDNN, "int8"; see _Linear). transformers' generate() is not used: it
  cannot add or drop rows mid-batch. transformers still provides config and tokenizer.
* One decoding thread owns the model. `draft()` (any thread) tokenises, queues a request
  and waits. The decoding thread loops: drop cancelled rows, admit waiting requests into
  free slots (fairly across `fairness_key`), prefill admitted prompts (alone, in fixed
  256-token chunks, interleaved with decoding so running streams don't stall), then one
  decoding step for every running row together. A finished or cancelled row leaves at
  once and its slot is reused at the next step.
* KV cache: each request owns its buffers [layers, 2, kv_heads, prompt+max_new, head_dim]
  (nothing to re-pad or merge when rows join or leave; no padding tokens at all); every
  row has its own positions. The matrix products of a step are batched over the rows;
  attention is computed per row over exactly that row's length.
* Prefix cache: a draft's system turn (its class's instructions, the same for every
  draft of the class) is prefilled apart from the rest of its prompt, and its keys and
  values are kept (PREFIX_CACHE system prompts, least recently used dropped): the next
  draft of the class copies them instead of computing them. Cached or not, the chunks
  are the same, so the tokens are too.
* Batch invariance (a draft's text does not depend on its batch mates): prefill always
  runs alone with the same chunking; per-row attention sees the same shapes whatever the
  batch; for the matrix products, `_calibrate_rows` finds at load (once per machine, then
  remembered in CACHE_DIR) the row counts for which the kernel gives every row bit-identical
  results, and decoding steps are padded up to such a count. The tests check it with greedy
  decoding on prompts of different lengths joining at different times.
* Callbacks run in the caller's thread, not the decoding thread: `on_text` is throttled to
  ~100 ms (plus once at the end), `should_stop` is polled every ~50 ms and flags the row,
  which the decoding thread drops before its next step. Slow callbacks (a channel-layer
  send, a DB query) therefore never stall the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inference.convert import Progress

import bisect
import itertools
import json
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path

from inference.backends.chat import ChatTokens, stop_token_ids, system_prefix_length
from inference.convert import (
    INSTALL_HINT,
    ModelSource,
    configure_tokenizer,
    convert_gguf,
    resolve_source,
)
from inference.engine import Draft, DraftJob, ModelUnavailable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from inference.backends.decoding import Decoding, repeated_tail  # noqa: E402

log = logging.getLogger(__name__)

PREFILL_CHUNK = 256  # prompt tokens per prefill pass (fixed: part of what makes results reproducible)
PREFILL_BUDGET = 512  # prompt tokens prefilled between two decoding steps while rows are decoding
MIN_ROWS_PADDED = 4  # kernels that are not row-invariant from 1 row are tried from 4 (see _calibrate_rows)
PREFIX_CACHE = 16  # system prompts whose keys and values are kept (0: none)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


class NotThisEngine(ModelUnavailable):
    """The model loads, but this engine does not implement its architecture: the generic
    engine (inference/backends/hf_generate.py) drafts with it instead."""


class _Linear:
    """y = x @ W.T with the weight stored for one of these kernels:

    onednn  fp32, prepacked for oneDNN (default on the CPU): no per-call repacking, which
            makes small-batch decoding ~2x faster than MKL sgemm, and bit-identical rows
            for any number of rows
    fp16    fp16 weights, fp32 activations and accumulation (fbgemm): half the memory traffic
    int8    int8 per output channel, bf16 activations (torch._weight_int8pack_mm)
    dense   plain F.linear in the compute dtype (accelerators, or CPUs without oneDNN)
    """

    __slots__ = ("w", "aux", "kind", "dtype")

    def __init__(self, weight: torch.Tensor, kind: str, dtype: torch.dtype, device: torch.device):
        self.kind = kind
        self.dtype = dtype
        self.aux = None
        w = weight.detach().to(device=device, dtype=torch.float32).contiguous()
        if kind == "onednn":
            self.w = torch.ops.mkldnn._reorder_linear_weight(w, None)
        elif kind == "fp16":
            self.w = torch.ops.aten.fbgemm_pack_gemm_matrix_fp16(w)
            self.aux = torch.zeros(w.shape[0], dtype=torch.float32, device=device)  # the kernel wants a bias
        elif kind == "int8":
            scales = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
            self.w = torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
            self.aux = scales.to(torch.bfloat16).contiguous()
        else:
            self.w = w if dtype == torch.float32 else w.to(dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        kind = self.kind
        if kind == "onednn":
            return torch.ops.mkldnn._linear_pointwise(x, self.w, None, "none", [], "")
        if kind == "fp16":
            return torch.ops.aten.fbgemm_linear_fp16_weight(x, self.w, self.aux)
        if kind == "int8":
            return torch._weight_int8pack_mm(x.to(torch.bfloat16), self.w, self.aux).to(x.dtype)
        if x.dtype != self.dtype:
            return F.linear(x.to(self.dtype), self.w).to(x.dtype)
        return F.linear(x, self.w)


class _Layer:
    __slots__ = ("ln1", "qkv", "o", "ln2", "gate_up", "down", "down_in")


class _Request:
    __slots__ = (
        "job",
        "key",
        "prompt_ids",
        "prefix_len",
        "max_new",
        "kv",
        "views",
        "length",
        "prefilled",
        "tokens",
        "probs",
        "t0",
        "t_first",
        "t_end",
        "cut_repeating",
        "cancel",
        "done",
        "error",
        "wake",
    )

    def __init__(self, job: DraftJob, prompt_ids: list[int], max_new: int):
        self.job = job
        self.key = job.fairness_key or ""
        self.prompt_ids = prompt_ids
        self.prefix_len = 0  # prompt tokens of the system turn (prefilled apart, cached)
        self.max_new = max_new
        self.kv: torch.Tensor | None = None
        self.views: list | None = None
        self.length = 0  # tokens in the KV cache
        self.prefilled = 0  # prompt tokens prefilled so far
        self.tokens: list[int] = []  # generated, stop token excluded
        self.probs: list[float] = []
        self.t0 = time.monotonic()
        self.t_first: float | None = None
        self.t_end: float | None = None
        self.cut_repeating = False
        self.cancel = False
        self.done = False
        self.error: BaseException | None = None
        self.wake = threading.Event()


def local_folder(name: str) -> str:
    """A local folder, or a Hugging Face id already in the local HF cache (never downloads)."""
    if os.path.isdir(name):
        return name
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelUnavailable(
            f"Model {name!r} is neither a local folder nor in the local Hugging Face cache (nothing is "
            f"downloaded at run time): {exc}. {INSTALL_HINT}"
        ) from exc


class _TensorReader:
    """Tensors of a Hugging Face folder by name: safetensors (one file or sharded) read
    directly, without building a transformers model; other formats through transformers."""

    def __init__(self, folder: str):
        self.files: dict[str, str] = {}
        self.handles: dict[str, object] = {}
        self.state: dict | None = None
        index = os.path.join(folder, "model.safetensors.index.json")
        single = os.path.join(folder, "model.safetensors")
        if os.path.isfile(index):
            with open(index) as fh:
                self.files = {k: os.path.join(folder, v) for k, v in json.load(fh)["weight_map"].items()}
        elif os.path.isfile(single):
            from safetensors import safe_open

            with safe_open(single, framework="pt") as fh:
                self.files = {k: single for k in fh.keys()}
        else:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
            self.state = dict(model.state_dict())

    def prefetch(self) -> None:
        """Read every tensor now (then `get` is only a dict lookup, safe from any thread)."""
        if self.state is None:
            self.state = {name: self._read(name) for name in self.files}
            self.handles.clear()

    def _read(self, name: str) -> torch.Tensor:
        from safetensors import safe_open

        path = self.files[name]
        if path not in self.handles:
            self.handles[path] = safe_open(path, framework="pt")
        return self.handles[path].get_tensor(name)

    def get(self, name: str, optional: bool = False) -> torch.Tensor | None:
        if self.state is not None:
            t = self.state.get(name)
        elif name in self.files:
            t = self._read(name)
        else:
            t = None
        if t is None and not optional:
            raise ModelUnavailable(f"Weight {name!r} is missing from the model files. {INSTALL_HINT}")
        return None if t is None else t.to(torch.float32)

    def close(self) -> None:
        self.handles.clear()
        self.state = None


def _release_freed_memory() -> None:
    """Give the fp32 copies freed after packing back to the OS (glibc keeps them otherwise:
    ~500 MB of RSS for SmolLM2)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            info = fh.read()
    except OSError:
        return os.uname().machine
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("flags")), "")
    import hashlib

    return f"{model}/{hashlib.sha1(flags.encode()).hexdigest()[:8]}/{os.cpu_count()}"


def _has_fbgemm_fp16() -> bool:
    try:
        w = torch.ops.aten.fbgemm_pack_gemm_matrix_fp16(torch.ones(8, 8))
        torch.ops.aten.fbgemm_linear_fp16_weight(torch.ones(1, 8), w, torch.zeros(8))
        return True
    except Exception:  # noqa: BLE001 - not built with fbgemm, or the op was removed
        return False


def resolve_device(name: str) -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable(f"TUTOR_MODEL DEVICE={name!r} but CUDA is not available: use 'auto' or 'cpu'.")
    return torch.device(name)


class TransformersEngine(ChatTokens):
    """See the module docstring. Config keys: MODEL, GGUF_FILE, DEVICE, DTYPE, QUANT,
    MAX_NEW_TOKENS, MAX_BATCH, CACHE_DIR, THREADS, PREFIX_CACHE and decoding.Decoding's.
    `progress(phase, fraction)` hears how far loading is: "converting" (a GGUF's first load),
    "reading", "calibrating"."""

    def __init__(self, config: dict, progress: Progress | None = None):
        started = time.monotonic()
        self.config = dict(config)
        self._progress = progress or (lambda phase, fraction=None: None)
        threads = int(config.get("THREADS") or 0) or (os.cpu_count() or 1)
        torch.set_num_threads(threads)
        self.device = resolve_device(str(config.get("DEVICE") or "auto"))
        dtype_name = str(config.get("DTYPE") or "auto").lower()
        self.quant = str(config.get("QUANT") or "auto").lower()
        if self.quant not in ("auto", "none", "fp16", "int8"):
            raise ValueError(f"TUTOR_MODEL QUANT={self.quant!r}: use 'auto', 'none', 'fp16' or 'int8'.")
        if self.quant not in ("auto", "none") and self.device.type != "cpu":
            raise ValueError(f"QUANT={self.quant!r} is only implemented for the CPU.")
        if dtype_name == "auto":
            # CPU: fp32 activations (bf16 math is slower than fp32 without AVX512-BF16, and less faithful).
            self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        elif dtype_name in _DTYPES:
            self.dtype = _DTYPES[dtype_name]
        else:
            raise ValueError(f"TUTOR_MODEL DTYPE={dtype_name!r}: use auto, float32, bfloat16 or float16.")
        if self.quant == "auto":
            # Measured on the 2-core AVX2 CPU: fp16 weights with fp32 math are ~1.5-2x faster
            # than fp32 weights and agree with fp32 on 99.9% of greedy tokens.
            self.quant = (
                "fp16" if (self.device.type == "cpu" and self.dtype == torch.float32 and _has_fbgemm_fp16()) else "none"
            )
        # Residual stream, norms, attention and KV cache: fp32 on the CPU (cheap, and keeps
        # low-precision weights faithful); the compute dtype on an accelerator.
        self.act_dtype = torch.float32 if self.device.type == "cpu" else self.dtype
        if self.quant != "none":
            self.kernel = self.quant
        elif self.device.type == "cpu" and self.dtype == torch.float32 and torch.backends.mkldnn.is_available():
            self.kernel = "onednn"
        else:
            self.kernel = "dense"
        self.max_new_default = int(config.get("MAX_NEW_TOKENS") or 160)
        self.max_batch = max(1, int(config.get("MAX_BATCH") or 32))
        self.decoding = Decoding.from_config(self.config)
        # Keys and values of recent system prompts (a class's instructions), computed once.
        self.prefix_cache_size = max(0, int(config.get("PREFIX_CACHE", PREFIX_CACHE)))
        self._prefixes: OrderedDict[tuple[int, ...], torch.Tensor] = OrderedDict()
        self.prefix_hits = 0

        self.source: ModelSource = resolve_source(self.config)
        self.model_name = self.source.name
        self._load(self.source)
        self._calibrate_rows()
        _release_freed_memory()
        self.settings = {
            "backend": "transformers",
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "quant": self.quant,
            "kernel": self.kernel,
            "batch_invariant": self.batch_invariant,
            "greedy": True,
            **self.decoding.settings(),
            "prefix_cache": self.prefix_cache_size,
            "max_batch": self.max_batch,
            "threads": threads,
        }

        self._cv = threading.Condition()
        self._waiting: OrderedDict[str, deque[_Request]] = OrderedDict()
        self._active: list[_Request] = []
        self._active_per_key: dict[str, int] = {}
        self._last_admit: dict[str, int] = {}
        self._admit_counter = itertools.count(1)
        self._closing = False
        self._thread: threading.Thread | None = None
        self._tok_lock = threading.Lock()
        self.steps = 0  # decoding steps run (for tests and benchmarks)
        self.max_rows_seen = 0
        self.load_seconds = time.monotonic() - started
        log.info(
            "Loaded %s (%s, %s, quant=%s) in %.1f s",
            self.model_name,
            self.device,
            self.dtype,
            self.quant,
            self.load_seconds,
        )

    # ------------------------------------------------------------------ loading
    def _load(self, source: ModelSource) -> None:
        from transformers import AutoConfig, AutoTokenizer

        if source.gguf is not None:
            folder = str(
                convert_gguf(source.gguf, self.config.get("CACHE_DIR"), log=log.warning, progress=self._progress)
            )
            self.cache_folder = folder
        else:
            folder = local_folder(source.hf)
            self.cache_folder = None
        self._progress("reading", None)
        # The tokenizer loads in another thread while the weights are read and packed.
        tok_box: dict = {}

        def load_tokenizer() -> None:
            try:
                tok_box["tok"] = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            except Exception as exc:  # noqa: BLE001
                tok_box["error"] = exc

        tok_thread = threading.Thread(target=load_tokenizer, name="tutor-tokenizer-load", daemon=True)
        tok_thread.start()
        try:
            cfg = AutoConfig.from_pretrained(folder, local_files_only=True)
        except Exception as exc:  # noqa: BLE001
            tok_thread.join()
            raise NotThisEngine(f"Cannot load model {folder!r} from local files: {exc}. {INSTALL_HINT}") from exc
        if (
            getattr(cfg, "model_type", "") not in ("llama", "mistral")
            or getattr(cfg, "attention_bias", False)
            or getattr(cfg, "mlp_bias", False)
        ):
            tok_thread.join()
            raise NotThisEngine(
                f"Model {source.name!r} has architecture {getattr(cfg, 'model_type', '?')!r}: this engine runs "
                f"Llama-style models without biases (SmolLM2, Llama, Mistral). {INSTALL_HINT}"
            )
        rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
        if (rope.get("rope_type") or rope.get("type") or "default") != "default":
            tok_thread.join()
            raise NotThisEngine(f"RoPE scaling {rope!r} is not supported by this engine.")
        theta = rope.get("rope_theta") or getattr(cfg, "rope_theta", None) or 10000.0
        self.hidden = cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or self.hidden // self.n_heads
        self.rep = self.n_heads // self.n_kv
        self.eps = cfg.rms_norm_eps
        self.context_window = int(getattr(cfg, "max_position_embeddings", 2048))
        self.n_layers = cfg.num_hidden_layers
        self.vocab = cfg.vocab_size

        dev, dt, kind = self.device, self.dtype, self.kernel
        adt = self.act_dtype
        tensors = _TensorReader(folder)
        with torch.no_grad():
            # RoPE tables, computed as transformers' default rotary embedding does.
            inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))
            pos = torch.arange(self.context_window, dtype=torch.float32)
            freqs = (inv_freq[:, None] @ pos[None, :]).t()
            emb = torch.cat((freqs, freqs), dim=-1)
            self.cos = emb.cos().to(dev, adt).contiguous()
            self.sin = emb.sin().to(dev, adt).contiguous()
            self.embed = tensors.get("model.embed_tokens.weight").to(dev, adt).contiguous()
            head = tensors.get("lm_head.weight", optional=True)
            if head is None or getattr(cfg, "tie_word_embeddings", False):
                head = self.embed
            self.lm_head = _Linear(head, kind, dt, dev)
            if kind == "dense" and dt == adt and head is self.embed:
                self.lm_head.w = self.embed  # tied: share, don't copy
            self.final_norm = tensors.get("model.norm.weight").to(dev, adt).contiguous()
            tensors.prefetch()  # read all tensors in this thread: safetensors handles are not shared

            def build(li: int) -> _Layer:
                pre = f"model.layers.{li}."

                def w(name: str) -> torch.Tensor:
                    return tensors.get(pre + name)

                with torch.no_grad():
                    L = _Layer()
                    L.ln1 = w("input_layernorm.weight").to(dev, adt).contiguous()
                    L.ln2 = w("post_attention_layernorm.weight").to(dev, adt).contiguous()
                    L.qkv = _Linear(
                        torch.cat(
                            [w("self_attn.q_proj.weight"), w("self_attn.k_proj.weight"), w("self_attn.v_proj.weight")]
                        ),
                        kind,
                        dt,
                        dev,
                    )
                    L.o = _Linear(w("self_attn.o_proj.weight"), kind, dt, dev)
                    L.gate_up = _Linear(torch.cat([w("mlp.gate_proj.weight"), w("mlp.up_proj.weight")]), kind, dt, dev)
                    down = w("mlp.down_proj.weight")
                    L.down = _Linear(down, kind, dt, dev)
                    L.down_in = down.shape[1]
                return L

            # Packing is C++ that releases the GIL: use the cores.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=max(1, min(4, torch.get_num_threads()))) as pool:
                self.layers: list[_Layer] = list(pool.map(build, range(self.n_layers)))
        tensors.close()
        tok_thread.join()
        if "error" in tok_box:
            exc = tok_box["error"]
            raise ModelUnavailable(f"Cannot load the tokenizer of {folder!r}: {exc}. {INSTALL_HINT}") from exc
        tok = tok_box["tok"]
        configure_tokenizer(tok)  # transformers does not persist padding_side
        self.tokenizer = tok
        self.stop_ids = stop_token_ids(tok, cfg, folder)

    def _calibrate_rows(self) -> None:
        """Find the row counts for which this machine's GEMM kernels give every row exactly
        the result it gets in the smallest step (`self.row_counts`); decoding steps are
        padded up to the next such count, so a draft's text never depends on its batch mates.

        Measured here: oneDNN fp32 and int8 are invariant for every count; MKL sgemm only from
        4 rows; fbgemm fp16 from 4 rows except some tail sizes (7, 14, 31, 32, 37, ...)."""
        if self.device.type != "cpu":
            self.row_counts = list(range(1, self.max_batch + 1))  # no guarantee claimed on accelerators
            self.batch_invariant = False
            return
        L = self.layers[0]
        lins = [L.o, L.qkv, L.gate_up, L.down, self.lm_head]  # cheapest first
        in_dims = [self.n_heads * self.head_dim, self.hidden, self.hidden, L.down_in, self.hidden]
        top = self.max_batch + 8  # room to pad the largest batch up to a good count
        # The answer depends only on the kernels, shapes, thread count and CPU: remember it.
        key = "|".join(
            map(
                str,
                (
                    self.kernel,
                    torch.__version__,
                    _cpu_signature(),
                    torch.get_num_threads(),
                    top,
                    self.hidden,
                    self.n_heads,
                    self.n_kv,
                    self.head_dim,
                    L.down_in,
                    self.vocab,
                ),
            )
        )
        store = (
            Path(self.config.get("CACHE_DIR") or Path.home() / ".cache" / "tutor-models").expanduser()
            / "row-calibration.json"
        )
        known = {}
        try:
            known = json.loads(store.read_text())
        except (OSError, ValueError):
            pass
        if isinstance(known.get(key), list) and known[key]:
            self.row_counts = known[key]
            self.batch_invariant = max(self.row_counts) >= self.max_batch
            return
        self._progress("calibrating", None)
        gen = torch.Generator().manual_seed(1234)
        with torch.inference_mode():
            xs = [torch.randn(top, k, generator=gen, dtype=self.act_dtype) for k in in_dims]
            for base in (1, MIN_ROWS_PADDED):
                good = set(range(base, top + 1))
                for lin, x in zip(lins, xs, strict=False):
                    if base == 1:
                        canon = torch.cat([lin(x[j : j + 1]) for j in range(top)])
                    else:
                        canon = torch.cat([lin(torch.cat([x[j : j + 1], x[: base - 1]]))[:1] for j in range(top)])
                    for m in sorted(good):
                        if not torch.equal(lin(x[:m]), canon[:m]):
                            good.discard(m)
                    if not good or max(good) < self.max_batch:
                        break
                if good and max(good) >= self.max_batch:
                    break
        self.row_counts = sorted(good)
        self.batch_invariant = bool(good) and max(good) >= self.max_batch
        if self.batch_invariant:
            known[key] = self.row_counts
            try:
                store.parent.mkdir(parents=True, exist_ok=True)
                tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(known, indent=0))
                os.replace(tmp, store)
            except OSError:
                pass
        if not self.batch_invariant:
            log.warning(
                "Kernel %s: no row padding makes decoding batch-invariant; drafts may differ slightly "
                "with their batch mates.",
                self.kernel,
            )
            self.row_counts = list(range(1, self.max_batch + 1))

    # ------------------------------------------------------------------ public API
    def draft(self, job: DraftJob) -> Draft:
        prompt_ids, max_new = self._fit(job.messages, job.max_new_tokens)
        req = _Request(job, prompt_ids, max_new)
        with self._tok_lock:
            req.prefix_len = system_prefix_length(self.tokenizer, job.messages, prompt_ids)
        self._submit(req)

        return self._follow(req, job, prompt_ids)

    def teacher_forced_choices(self, prompt_ids: list[int], forced_ids: list[int]) -> list[int]:
        """The greedy choice at each position of a forced continuation (fidelity measurements).
        Same prefill and decoding kernels as draft(); call it while no draft is running."""
        torch.set_flush_denormal(True)
        r = _Request(DraftJob(messages=[], max_new_tokens=len(forced_ids)), list(prompt_ids), len(forced_ids))
        P = len(prompt_ids)
        self._allocate(r, P + len(forced_ids) + 1)
        choices = []
        with torch.inference_mode():
            for start in range(0, P, PREFILL_CHUNK):
                end = min(start + PREFILL_CHUNK, P)
                logits = self._prefill_chunk(r, start, end)
                r.prefilled = r.length = end
            choices.append(int(logits[-1].argmax()))
            for t in forced_ids[:-1]:
                r.tokens.append(t)
                choices.append(int(self._decode_step([r])[0].argmax()))
        return choices

    def close(self) -> None:
        """Stop the decoding thread (tests). Running drafts finish as cancelled."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # ------------------------------------------------------------------ scheduling
    def _submit(self, req: _Request) -> None:
        with self._cv:
            if self._closing:
                raise RuntimeError("engine is closed")
            self._waiting.setdefault(req.key, deque()).append(req)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tutor-model-decoder", daemon=True)
                self._thread.start()
            self._cv.notify()

    def _cancel(self, req: _Request) -> None:
        with self._cv:
            req.cancel = True
            self._cv.notify()

    def _admit_locked(self) -> list[_Request]:
        """Move waiting requests into free slots: fewest running jobs per key first, then the
        key served longest ago (round-robin), FIFO within a key."""
        admitted = []
        for key in [k for k, q in self._waiting.items() if not q]:
            del self._waiting[key]
        # drop cancelled waiting requests
        for key, q in list(self._waiting.items()):
            for r in [r for r in q if r.cancel]:
                q.remove(r)
                self._finish(r)
            if not q:
                del self._waiting[key]
        while self._waiting and len(self._active) < self.max_batch:
            key = min(self._waiting, key=lambda k: (self._active_per_key.get(k, 0), self._last_admit.get(k, 0)))
            q = self._waiting[key]
            req = q.popleft()
            if not q:
                del self._waiting[key]
            self._last_admit[key] = next(self._admit_counter)
            self._active_per_key[key] = self._active_per_key.get(key, 0) + 1
            self._active.append(req)
            admitted.append(req)
        if len(self._last_admit) > 4096:  # forget students who have nothing queued or running
            for key in [k for k in self._last_admit if k not in self._waiting and k not in self._active_per_key]:
                del self._last_admit[key]
        return admitted

    def _release_locked(self, req: _Request) -> None:
        if req in self._active:
            self._active.remove(req)
            n = self._active_per_key.get(req.key, 1) - 1
            if n:
                self._active_per_key[req.key] = n
            else:
                self._active_per_key.pop(req.key, None)
        req.kv = req.views = None

    def _finish(self, req: _Request, error: BaseException | None = None) -> None:
        req.error = error
        req.t_end = time.monotonic()
        req.kv = req.views = None
        req.done = True
        req.wake.set()

    def _run(self) -> None:
        # Denormals (from padding rows, silu of large negatives) make x86 float math ~3x
        # slower; flushing them is per thread, so set it in the thread that computes.
        torch.set_flush_denormal(True)
        while True:
            with self._cv:
                while not self._closing and not self._active and not any(self._waiting.values()):
                    self._cv.wait()
                if self._closing:
                    for r in list(self._active) + [r for q in self._waiting.values() for r in q]:
                        r.cancel = True
                        self._release_locked(r)
                        self._finish(r)
                    self._waiting.clear()
                    return
                self._admit_locked()
                for r in [r for r in self._active if r.cancel]:
                    self._release_locked(r)
                    self._finish(r)
                active = list(self._active)
            if not active:
                continue
            try:
                with torch.inference_mode():
                    self._iteration(active)
            except BaseException as exc:  # noqa: BLE001 - fail the batch, keep the thread alive
                log.exception("Model step failed; failing %d running drafts", len(active))
                with self._cv:
                    for r in active:
                        self._release_locked(r)
                        if not r.done:
                            self._finish(r, exc)

    def _iteration(self, active: list[_Request]) -> None:
        decoding = [r for r in active if r.prefilled == len(r.prompt_ids) and not r.done]
        prefilling = [r for r in active if r.prefilled < len(r.prompt_ids)]
        budget = PREFILL_BUDGET if decoding else 1 << 30
        finished: list[_Request] = []
        for r in prefilling:
            if budget <= 0:
                break
            if r.kv is None:
                cap = len(r.prompt_ids) + r.max_new
                self._allocate(r, cap)
                self._reuse_prefix(r)
            while r.prefilled < len(r.prompt_ids) and budget > 0:
                # The system turn is prefilled apart, cached or not: the same chunks either
                # way, so a cached prefix gives the very same tokens.
                start = r.prefilled
                upto = r.prefix_len if start < r.prefix_len else len(r.prompt_ids)
                end = min(start + PREFILL_CHUNK, upto)
                logits = self._prefill_chunk(r, start, end)
                budget -= end - start
                r.prefilled = r.length = end
                if end == r.prefix_len:
                    self._remember_prefix(r)
            if r.prefilled == len(r.prompt_ids):
                if self._accept(r, logits[-1:])[0]:
                    finished.append(r)
            if r.cancel:
                break
        if decoding:
            rows = [r for r in decoding if not r.cancel]
            if rows:
                logits = self._decode_step(rows)
                for r, fin in zip(rows, self._accept_many(rows, logits), strict=False):
                    if fin:
                        finished.append(r)
        if finished:
            with self._cv:
                for r in finished:
                    self._release_locked(r)
                    self._finish(r)

    def _reuse_prefix(self, r: _Request) -> None:
        """Copy the cached keys and values of the request's system turn, if known."""
        if not r.prefix_len or not self.prefix_cache_size:
            return
        cached = self._prefixes.get(tuple(r.prompt_ids[: r.prefix_len]))
        if cached is not None:
            self._prefixes.move_to_end(tuple(r.prompt_ids[: r.prefix_len]))
            r.kv[:, :, :, : r.prefix_len].copy_(cached)
            r.prefilled = r.length = r.prefix_len
            self.prefix_hits += 1

    def _remember_prefix(self, r: _Request) -> None:
        if not self.prefix_cache_size:
            return
        key = tuple(r.prompt_ids[: r.prefix_len])
        if key not in self._prefixes:
            self._prefixes[key] = r.kv[:, :, :, : r.prefix_len].clone()
            while len(self._prefixes) > self.prefix_cache_size:
                self._prefixes.popitem(last=False)

    def _allocate(self, r: _Request, cap: int) -> None:
        r.kv = torch.empty((self.n_layers, 2, self.n_kv, cap, self.head_dim), dtype=self.act_dtype, device=self.device)
        # per layer: the layer's [2, kv_heads, cap, head_dim] buffer, and its K and V as [1, ...]
        r.views = [(kv, kv[0:1], kv[1:2]) for kv in r.kv]

    def _accept(self, r: _Request, logits: torch.Tensor) -> list[bool]:
        return self._accept_many([r], logits)

    def _accept_many(self, rows: list[_Request], logits: torch.Tensor) -> list[bool]:
        """Greedy choice per row (after the repetition rules, each from the row's own
        tokens); returns which rows are finished."""
        logits = logits.float()
        probs_all = torch.softmax(logits, dim=-1)
        if self.decoding.changes_logits:
            logits = logits.clone()
            for i, r in enumerate(rows):
                self.decoding.apply(logits[i], r.tokens)
        ids = logits.argmax(dim=-1)
        probs = probs_all.gather(1, ids[:, None])[:, 0]
        now = time.monotonic()
        out = []
        for r, t, p in zip(rows, ids.tolist(), probs.tolist(), strict=False):
            if r.t_first is None:
                r.t_first = now
                r.wake.set()
            if t in self.stop_ids:
                out.append(True)
                continue
            r.tokens.append(t)
            r.probs.append(p)
            cut = repeated_tail(r.tokens) if self.decoding.stop_repeats else 0
            if cut:  # it has started looping: keep the first copy, stop
                del r.tokens[-cut:], r.probs[-cut:]
                r.cut_repeating = True
                out.append(True)
                continue
            out.append(len(r.tokens) >= r.max_new)
        return out

    # ------------------------------------------------------------------ the model
    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rot * sin

    def _prefill_chunk(self, r: _Request, start: int, end: int) -> torch.Tensor:
        """Run prompt tokens [start, end) of one request; returns logits of the last position."""
        H, nh, nkv, hd = self.hidden, self.n_heads, self.n_kv, self.head_dim
        C = end - start
        ids = torch.tensor(r.prompt_ids[start:end], device=self.device)
        x = self.embed[ids]
        cos = self.cos[start:end, None, :]
        sin = self.sin[start:end, None, :]
        mask = None
        if start > 0:
            mask = (
                torch.arange(end, device=self.device)[None, :] <= torch.arange(start, end, device=self.device)[:, None]
            )
        for li, L in enumerate(self.layers):
            h = F.rms_norm(x, (H,), L.ln1, self.eps)
            qkv = L.qkv(h)
            qk = self._rope(qkv[:, : (nh + nkv) * hd].view(C, nh + nkv, hd), cos, sin)
            kv = r.kv[li]
            kv[0, :, start:end] = qk[:, nh:].transpose(0, 1)
            kv[1, :, start:end] = qkv[:, (nh + nkv) * hd :].view(C, nkv, hd).transpose(0, 1)
            q = qk[:, :nh].transpose(0, 1).unsqueeze(0)
            attn = F.scaled_dot_product_attention(
                q, kv[0:1, :, :end], kv[1:2, :, :end], attn_mask=mask, is_causal=mask is None, enable_gqa=True
            )
            x = x + L.o(attn[0].transpose(0, 1).reshape(C, nh * hd))
            h = F.rms_norm(x, (H,), L.ln2, self.eps)
            g, u = L.gate_up(h).chunk(2, dim=-1)
            x = x + L.down(F.silu(g) * u)
        h = F.rms_norm(x[-1:], (H,), self.final_norm, self.eps)
        return self.lm_head(h)

    def _decode_step(self, rows: list[_Request]) -> torch.Tensor:
        """One token for each row, batched; returns logits [B, vocab]."""
        H, nh, nkv, hd, rep = self.hidden, self.n_heads, self.n_kv, self.head_dim, self.rep
        B = len(rows)
        counts = self.row_counts
        M = counts[bisect.bisect_left(counts, B)] if B <= counts[-1] else B
        self.steps += 1
        self.max_rows_seen = max(self.max_rows_seen, B)
        toks = [r.tokens[-1] for r in rows] + [0] * (M - B)
        lens = [r.length for r in rows]
        x = self.embed[torch.tensor(toks, device=self.device)]
        pos = torch.tensor(lens, device=self.device)
        cos = self.cos[pos][:, None, :]
        sin = self.sin[pos][:, None, :]
        qkd = (nh + nkv) * hd
        sdpa = F.scaled_dot_product_attention
        attn = torch.zeros((M, nh * hd), dtype=x.dtype, device=self.device)
        views = [r.views for r in rows]
        ends = [n + 1 for n in lens]
        attn_rows = attn[:B].view(B, nkv, rep, hd)
        for li, L in enumerate(self.layers):
            h = F.rms_norm(x, (H,), L.ln1, self.eps)
            qkv = L.qkv(h)
            qk = self._rope(qkv[:B, :qkd].view(B, nh + nkv, hd), cos, sin)
            new_kv = torch.cat((qk[:, nh:], qkv[:B, qkd:].view(B, nkv, hd)), dim=1).view(B, 2, nkv, hd)
            q = qk[:, :nh].reshape(B, 1, nkv, rep, hd)  # the `rep` query heads of a kv head as `rep` queries
            outs = []
            for i in range(B):
                kv, k, v = views[i][li]
                e = ends[i]
                kv[:, :, e - 1] = new_kv[i]
                # Each row attends over exactly its own length: same shapes as when alone.
                outs.append(sdpa(q[i], k[:, :, :e], v[:, :, :e]))
            torch.cat(outs, out=attn_rows) if B > 1 else attn_rows.copy_(outs[0])
            x = x + L.o(attn)
            h = F.rms_norm(x, (H,), L.ln2, self.eps)
            g, u = L.gate_up(h).chunk(2, dim=-1)
            x = x + L.down(F.silu(g) * u)
        h = F.rms_norm(x, (H,), self.final_norm, self.eps)
        logits = self.lm_head(h)[:B]
        for r in rows:
            r.length += 1
        return logits
