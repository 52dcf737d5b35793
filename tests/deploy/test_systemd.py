"""The systemd units in deploy/systemd pass `systemd-analyze verify`, once their paths are
those of this checkout (as an installer sets them): every key known, every command found."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT

UNITS = ROOT / "deploy" / "systemd"


def installed(tmp_path: Path) -> Path:
    """The units as a school installs them, with /srv/tutor and /etc/tutor pointing here."""
    (tmp_path / "tutor.env").write_text((ROOT / "deploy" / "tutor.env.example").read_text())
    (tmp_path / "secret_key").write_text("x" * 50)
    for unit in UNITS.iterdir():
        text = (
            unit.read_text()
            .replace("/srv/tutor/.venv/bin/python", sys.executable)
            .replace("/srv/tutor", str(ROOT))
            .replace("/etc/tutor/", f"{tmp_path}/")
        )
        (tmp_path / unit.name).write_text(text)
    return tmp_path


def verify(folder: Path, *units: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], cwd=folder, capture_output=True, text=True, timeout=120
    )


def needs_systemd_analyze():
    if not shutil.which("systemd-analyze"):
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing: .ci/run installs it (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed")


def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    needs_systemd_analyze()
    folder = installed(tmp_path)
    instance = {"tutor-web@.service": "tutor-web@8001.service", "tutor-worker@.service": "tutor-worker@local.service"}
    units = sorted(instance.get(p.name, p.name) for p in UNITS.iterdir())
    assert {"tutor.target", "tutor-worker@local.service", "tutor-beat.service", "tutor-web@8001.service"} <= set(units)
    result = verify(folder, *units)
    # verify exits 0 on unknown keys and bad values: its warnings count as failures here.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_verify_would_catch_a_mistake(tmp_path):
    needs_systemd_analyze()
    folder = installed(tmp_path)
    unit = folder / "tutor-worker@.service"
    unit.write_text(unit.read_text().replace("KillMode=mixed", "KilMode=mixed"))
    result = verify(folder, "tutor-worker@local.service")
    assert "KilMode" in result.stdout + result.stderr
