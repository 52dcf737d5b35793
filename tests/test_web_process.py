"""The web process never loads the model's libraries."""

import subprocess
import sys


def test_loading_the_asgi_application_imports_neither_torch_nor_transformers():
    code = (
        "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tests.settings');"
        "from tutor.asgi import application;"
        "import tutor.urls, tutor.views, tutor.consumers, tutor.services, classrooms.views;"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules];"
        "print('loaded:', bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
