"""Layering rules: the engine never imports Qt; MediaPipe is imported in one module only."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_never_imports_qt() -> None:
    qt = {"PySide6", "PyQt5", "PyQt6", "PySide2", "app"}
    offenders = [p for p in ENGINE.rglob("*.py") if _imports(p) & qt]
    assert not offenders, f"engine modules importing Qt or the app: {offenders}"


def test_mediapipe_is_imported_in_one_place() -> None:
    allowed = {
        ENGINE / "landmarks" / "mediapipe_tracker.py",
        ENGINE / "tools" / "build_face_model.py",
    }
    users = {p for p in ENGINE.rglob("*.py") if "mediapipe" in _imports(p)}
    assert users <= allowed and ENGINE / "landmarks" / "mediapipe_tracker.py" in users


def test_engine_uses_logging_not_print() -> None:
    offenders = []
    for p in ENGINE.rglob("*.py"):
        if p.name == "cli.py" or "tools" in p.parts:
            continue  # command output is the CLI's job
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{p}:{node.lineno}")
    assert not offenders
