"""Production settings: `check --deploy` is clean, and unsafe settings refuse to start."""

import subprocess
import sys

import pytest

PRODUCTION = {
    "TUTOR_ENV": "production",
    "SECRET_KEY": "k3y-" + "x9Qw2!eR" * 8,
    "ALLOWED_HOSTS": "tutor.school.example",
    "DJANGO_SETTINGS_MODULE": "tutor.settings",
    "PATH": "/usr/bin:/bin",
}


def manage(*args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", *args], capture_output=True, text=True, timeout=120, env={**PRODUCTION, **env}
    )


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "env, complaint",
    [
        ({"SECRET_KEY": "dev-only-insecure-key-change-me"}, "SECRET_KEY"),
        ({"DEBUG": "1"}, "DEBUG"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(env, complaint):
    result = manage("check", **env)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(PRODUCTION["SECRET_KEY"] + "-from-file\n")
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        SECRET_KEY="",
        SECRET_KEY_FILE=str(secret),
    )
    assert result.stdout.strip().endswith("-from-file"), result.stderr
