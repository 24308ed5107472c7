"""A leading underscore means "this module only": no other module of the project imports such a name or
reaches it through a module (`folder._decode`), tests included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN = ("core", "ui", "app_pages")  # the project's importable packages


def _private_uses(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    imported, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in OWN}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OWN:
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(root)}:{node.lineno} from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in imported:
                found.append(f"{path.relative_to(root)}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_module_uses_another_modules_private_names():
    files = [ROOT / "app.py"] + [p for folder in (*OWN, "tests", "bench") for p in (ROOT / folder).rglob("*.py")]
    found = [use for path in files for use in _private_uses(path)]
    assert not found, "private names used from another module:\n" + "\n".join(found)


def test_the_check_sees_imports_and_attribute_access(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import core.data.folder as folder\nfrom core.config import _secret\n"
                      "def f():\n    return folder._decode, folder.public\n")
    assert _private_uses(sample, tmp_path) == ["sample.py:2 from core.config import _secret",
                                               "sample.py:4 folder._decode"]
