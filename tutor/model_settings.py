"""The language models a deployment declares, read from the environment by tutor/settings.py.

TUTOR_MODELS_FILE names a JSON file, or TUTOR_MODELS holds the JSON itself: a list of
models, each an object such as

    {"key": "academie", "label": {"en": "Académie server — Mistral Small",
                                  "fr": "Serveur de l'académie — Mistral Small"},
     "backend": "openai", "url": "https://albert.api.etalab.gouv.fr/v1",
     "model": "mistral-small", "api_key_file": "/run/secrets/albert", "concurrency": 16}

`key` (letters, digits, - and _) names its worker queue and is recorded on each reply;
`label` is what teachers and school admins read; `backend` is openai, transformers or
fake. Every other field becomes the engine's config key in capitals (`max_new_tokens` ->
MAX_NEW_TOKENS, `repetition_penalty` -> REPETITION_PENALTY), with these names for
people: `path` (transformers: a model folder, GGUF file or cached id) -> MODEL, `gguf`
-> GGUF_FILE, `url` -> BASE_URL, `concurrency` (drafts one worker runs at once) ->
MAX_BATCH; `model` is the server's name for the model (openai). A model marked
`"default": true` (else the first) is the deployment's default.

With neither set, there is one model, "local": the engine the TUTOR_MODEL_* settings
describe (the embedded SmolLM2 unless they say otherwise), so nothing changes for a
school that sets nothing. Bad input stops the start with a message that says what to fix.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

BACKENDS = ("openai", "transformers", "fake")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
ALIASES = {"path": "MODEL", "gguf": "GGUF_FILE", "url": "BASE_URL", "base_url": "BASE_URL", "concurrency": "MAX_BATCH"}
# Settings every model gets from TUTOR_MODEL_* unless it says otherwise.
INHERITED = (
    "MAX_NEW_TOKENS",
    "CACHE_DIR",
    "THREADS",
    "DEVICE",
    "DTYPE",
    "QUANT",
    "ENGINE",
    "PREFIX_CACHE",
    "FAKE_SECONDS_PER_TOKEN",
    "CONNECT_TIMEOUT",
    "FIRST_TOKEN_TIMEOUT",
    "TOTAL_TIMEOUT",
    "RETRIES",
)
DEFAULT_KEY = "local"
# Worker concurrency for a server-backed model when it does not say (streams are cheap).
OPENAI_CONCURRENCY = 8


def _fail(message: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"TUTOR_MODELS: {message}")


def _translated_with_name(text: str, name: str) -> str:
    return gettext(text) % {"name": name}


_named = lazy(_translated_with_name, str)  # translated when shown, in the reader's language


def default_local_model(tutor_model: dict) -> dict:
    """The one model of a deployment that declares none: TUTOR_MODEL_* as they are."""
    config = dict(tutor_model)
    label = os.environ.get("TUTOR_MODEL_LABEL", "").strip()
    if not label:
        if config.get("BACKEND") == "openai":
            label = _named(gettext_noop("Model server: %(name)s"), config.get("MODEL") or config.get("BASE_URL"))
        elif config.get("MODEL"):
            label = _named(gettext_noop("On this server: %(name)s"), Path(str(config["MODEL"])).name)
        else:
            label = _("Small model on this server (fast, often wrong)")
    return {"key": DEFAULT_KEY, "label": label, "backend": config.get("BACKEND", "transformers"), "config": config}


def read_models(tutor_model: dict, environ: dict | None = None) -> list[dict]:
    """The declared models: [{"key", "label", "backend", "config"}], the default first."""
    environ = os.environ if environ is None else environ
    path = environ.get("TUTOR_MODELS_FILE", "").strip()
    raw = environ.get("TUTOR_MODELS", "").strip()
    if path:
        try:
            raw = Path(path).read_text()
        except OSError as exc:
            raise _fail(f"cannot read TUTOR_MODELS_FILE {path}: {exc}") from exc
    if not raw:
        return [default_local_model(tutor_model)]
    try:
        declared = json.loads(raw)
    except ValueError as exc:
        raise _fail(f"not valid JSON ({exc})") from exc
    if isinstance(declared, dict):
        declared = declared.get("models", [declared] if "key" in declared else [])
    if not isinstance(declared, list) or not declared:
        raise _fail('declare a list of models, e.g. [{"key": "local", "label": "…", "backend": "…"}]')
    models = [_one_model(entry, i, tutor_model) for i, entry in enumerate(declared)]
    keys = [m["key"] for m in models]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise _fail(f"each model needs its own key; declared twice: {', '.join(twice)}")
    defaults = [m for m in models if m.pop("default")]
    if len(defaults) > 1:
        raise _fail(f"only one model can be the default; marked: {', '.join(m['key'] for m in defaults)}")
    if defaults:
        models.remove(defaults[0])
        models.insert(0, defaults[0])
    return models


def _one_model(entry: object, index: int, tutor_model: dict) -> dict:
    where = f"model {index + 1}"
    if not isinstance(entry, dict):
        raise _fail(f"{where} is not an object")
    key = str(entry.get("key", "")).strip()
    if not KEY_PATTERN.match(key):
        raise _fail(f"{where} needs a key of 1 to 40 letters, digits, - or _ (got {key!r})")
    where = f"model {key!r}"
    label = entry.get("label")
    if isinstance(label, dict):
        label = {str(lang): str(text).strip() for lang, text in label.items() if str(text).strip()}
    elif isinstance(label, str):
        label = label.strip()
    if not label:
        raise _fail(f'{where} needs a label that teachers understand, e.g. "Académie server — Mistral Small"')
    backend = str(entry.get("backend", "")).strip()
    if backend not in BACKENDS:
        raise _fail(f"{where}: backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
    config = {name: tutor_model[name] for name in INHERITED if name in tutor_model}
    config.update({"BACKEND": backend, "MODEL": "", "GGUF_FILE": ""})
    if backend == "openai":
        config["MAX_BATCH"] = OPENAI_CONCURRENCY
    else:
        config["MAX_BATCH"] = tutor_model.get("MAX_BATCH", 32)
    for name, value in entry.items():
        if name in ("key", "label", "backend", "default"):
            continue
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(name)):
            raise _fail(f"{where}: {name!r} is not a setting name")
        config[ALIASES.get(name, str(name).upper())] = value
    if backend == "openai" and not str(config.get("BASE_URL") or "").startswith(("http://", "https://")):
        raise _fail(f'{where}: an openai model needs the server\'s url, e.g. "http://127.0.0.1:8000/v1"')
    for name in ("MAX_BATCH", "MAX_NEW_TOKENS"):
        if not isinstance(config.get(name), int) or isinstance(config.get(name), bool) or config[name] < 1:
            raise _fail(f"{where}: {name.lower()} must be a whole number of at least 1")
    return {"key": key, "label": label, "backend": backend, "config": config, "default": bool(entry.get("default"))}


# Read at run time, from Django's settings.


def declared_models() -> list[dict]:
    from django.conf import settings

    return settings.TUTOR_MODELS


def default_model_key() -> str:
    return declared_models()[0]["key"]


def model_config(key: str) -> dict | None:
    """The engine config of the model declared under `key`, or None."""
    return next((dict(m["config"]) for m in declared_models() if m["key"] == key), None)


def draft_queue(key: str) -> str:
    """The Celery queue the drafts of model `key` go to (its workers consume it)."""
    from django.conf import settings

    return f"{settings.CELERY_TASK_DEFAULT_QUEUE}.drafts.{key}"


def serving_model_key() -> str:
    """The model this worker process drafts with (`manage.py worker --model KEY`), or ""
    outside a worker."""
    return os.environ.get("TUTOR_WORKER_MODEL", "")
