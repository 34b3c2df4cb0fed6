"""Names that start with ``_`` are private to their package: no module under ``src/`` uses
another package's private name (``from speciosa.clinic.services import _once``,
``services._once(...)`` after ``from speciosa.clinic import services``, or a private module
``speciosa.safety._validate`` from outside ``speciosa.safety``).

A package is a first-level part of ``speciosa`` (``speciosa.clinic``, ``speciosa.interop``,
...); the top-level modules (``speciosa.cli``, ``speciosa.tasks``) belong to ``speciosa``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(module: str, src: Path) -> str:
    """``speciosa.clinic`` for ``speciosa.clinic.services``; ``speciosa`` for ``speciosa.cli``."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (src.joinpath(*parts) / "__init__.py").exists()):
        return ".".join(parts[:2])
    return parts[0]


def _resolve(module: str, node: ast.ImportFrom, is_init: bool) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_init else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private_part(dotted: str) -> str | None:
    return next((p for p in dotted.split(".") if _private(p)), None)


def violations(path: Path, src: Path = SRC) -> list[str]:
    """Each use in ``path`` of another package's private name, as ``file:line: what``."""
    module = _module_name(path, src)
    own = _package(module, src)
    is_init = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    foreign_modules: dict[str, str] = {}  # local alias -> a module of another package

    def foreign(target: str) -> bool:
        return target.startswith("speciosa") and _package(target, src) != own

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if foreign(alias.name):
                    if _private_part(alias.name):
                        found.append(f"{path.name}:{node.lineno}: import {alias.name}")
                    foreign_modules[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node, is_init)
            if not foreign(source):
                continue
            if _private_part(source):
                found.append(f"{path.name}:{node.lineno}: from {source} import ...")
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{path.name}:{node.lineno}: from {source} import {alias.name}")
                else:
                    foreign_modules[alias.asname or alias.name] = f"{source}.{alias.name}"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in foreign_modules and _private(node.attr)):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr} "
                         f"({foreign_modules[node.value.id]})")
    return found


def test_no_module_uses_a_private_name_of_another_package():
    problems = [f"{p.relative_to(SRC)}: {v}" for p in sorted(SRC.rglob("*.py")) for v in violations(p)]
    assert problems == []


def test_the_check_finds_each_way_of_reaching_into_another_package(tmp_path):
    for part in ("interop", "clinic", "safety"):
        (tmp_path / "speciosa" / part).mkdir(parents=True)
        (tmp_path / "speciosa" / part / "__init__.py").write_text("")
    (tmp_path / "speciosa" / "__init__.py").write_text("")
    pkg = tmp_path / "speciosa" / "interop"
    bad = pkg / "bad.py"
    bad.write_text(
        "from speciosa.clinic.services import _once\n"
        "from speciosa.clinic import services\n"
        "import speciosa.safety._validate\n"
        "from . import _own_helper\n"  # the package's own private name: allowed
        "services._snapshot(1)\n"
        "services.audit(1)\n")
    found = violations(bad, tmp_path)
    assert sorted(f.split(": ", 1)[1] for f in found) == [
        "from speciosa.clinic.services import _once",
        "import speciosa.safety._validate",
        "services._snapshot (speciosa.clinic.services)",
    ]
