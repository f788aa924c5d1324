"""Layering rules: no Qt in the engine; MediaPipe, TensorRT and torch.compile each in one place."""

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
        ENGINE / "tools" / "mp_replay.py",  # records MediaPipe for the GPU machine (dev only)
    }
    users = {p for p in ENGINE.rglob("*.py") if "mediapipe" in _imports(p)}
    assert users <= allowed and ENGINE / "landmarks" / "mediapipe_tracker.py" in users


def test_engine_uses_logging_not_print() -> None:
    offenders = []
    for p in ENGINE.rglob("*.py"):
        if p.name in ("cli.py", "command.py") or "tools" in p.parts:
            continue  # command output is the CLI's job
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{p}:{node.lineno}")
    assert not offenders


def test_compilers_are_used_in_one_place() -> None:
    """torch_tensorrt is imported, and torch.compile called, only in engine/runtime/compile.py."""
    home = ENGINE / "runtime" / "compile.py"
    trt = {p for p in ENGINE.rglob("*.py") if "torch_tensorrt" in _imports(p)}
    assert trt <= {home}
    calls = [p for p in ENGINE.rglob("*.py") if "torch.compile(" in p.read_text() and p != home]
    assert not calls, f"torch.compile outside runtime/compile.py: {calls}"


def test_weights_are_never_unpickled_unsafely() -> None:
    """Every torch.load in the engine passes weights_only=True."""
    offenders = []
    for p in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load"):
                continue
            if getattr(node.func.value, "id", "") != "torch":  # type: ignore[attr-defined]
                continue
            safe = any(
                k.arg == "weights_only" and getattr(k.value, "value", None) is True
                for k in node.keywords
            )
            if not safe:
                offenders.append(f"{p}:{node.lineno}")
    assert not offenders, f"torch.load without weights_only=True: {offenders}"


APP = ENGINE.parent / "app"


def _modules(path: Path) -> set[str]:
    """Full names of the absolute imports of a file (`from a.b import c` gives a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_app_uses_only_the_engine_api() -> None:
    """app/ reaches the engine through engine/api.py alone (the narrow public surface)."""
    offenders = [
        f"{p.relative_to(APP.parent)}: {m}"
        for p in sorted(APP.rglob("*.py"))
        for m in sorted(_modules(p))
        if (m == "engine" or m.startswith("engine.")) and m != "engine.api"
    ]
    assert not offenders, f"app modules importing engine internals: {offenders}"


def test_app_models_are_qt_free() -> None:
    """The state behind the widgets (app/models, the controllers) is testable without Qt."""
    files = [*sorted((APP / "models").rglob("*.py")), APP / "controller.py"]
    files.append(APP / "personalization.py")
    offenders = [str(p) for p in files if _imports(p) & {"PySide6", "shiboken6"}]
    assert not offenders, f"Qt imported by models: {offenders}"
