"""The direction of imports is inference -> tutor -> classrooms, never back, not even
inside a function. ruff enforces it too (classrooms/ruff.toml, banned-api); this test
reads every import of the source tree, so the rule holds whatever the lint setup."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each layer, and the layers above it that it must not import.
ABOVE = {"classrooms": ("tutor", "inference"), "tutor": ("inference",)}


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_a_layer_imports_nothing_from_the_layers_above_it(layer):
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for line, module in imports_of(path)
        if module.split(".")[0] in ABOVE[layer]
    ]
    assert not wrong, "\n".join(wrong)
