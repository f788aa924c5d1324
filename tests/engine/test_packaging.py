"""The standalone bundle (build.spec): paths inside it, its compile backends, OpenCV's Qt
variables, and, once built (`make app`), the bundle's own self-test from another folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.device import probe_device
from engine.errors import CompileError
from engine.paths import (
    assets_dir,
    bundled_portraits,
    drop_opencv_qt_overrides,
    face_model_path,
    is_frozen,
    models_dir,
    sample_driving_clip,
)
from engine.runtime.compile import compile_graph

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "dist" / "visage" / "visage"


@pytest.fixture
def frozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Pretend to run inside a PyInstaller bundle whose data folder is tmp_path."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.delenv("VISAGE_ASSETS", raising=False)
    return tmp_path


def test_source_tree_paths() -> None:
    assert not is_frozen()
    assert assets_dir() == REPO / "assets" or "VISAGE_ASSETS" in os.environ
    assert face_model_path().is_file()
    assert sample_driving_clip().is_file()
    assert bundled_portraits()[0].name == "mona_lisa.jpg"


def test_frozen_paths_resolve_inside_the_bundle(frozen: Path) -> None:
    assert is_frozen()
    assert assets_dir() == frozen / "assets"
    assert models_dir() == frozen / "assets" / "models"
    assert sample_driving_clip() == frozen / "assets" / "driving" / "sample.mp4"


def test_frozen_app_runs_the_networks_eagerly(frozen: Path) -> None:
    """No toolchain ships in the bundle: torch.compile is not offered, and asking says why."""
    backends = probe_device().backends
    assert "torch.compile" not in backends and backends[-1] == "eager"
    net = torch.nn.Linear(4, 2)
    graph = compile_graph(net, (torch.zeros(1, 4),), backend="auto", device="cpu")
    assert graph.report.backend == "eager" and not graph.report.fallbacks
    with pytest.raises(CompileError, match=r"standalone app cannot run torch\.compile"):
        compile_graph(net, (torch.zeros(1, 4),), backend="torch.compile", device="cpu")


def test_opencv_qt_variables_are_dropped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the values that point into cv2/qt/ go; a user's own Qt settings stay."""
    cv2_qt = tmp_path / "site-packages" / "cv2" / "qt"
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", str(cv2_qt / "plugins"))
    monkeypatch.setenv("QT_QPA_FONTDIR", "/usr/share/fonts")
    assert drop_opencv_qt_overrides() == ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ
    assert os.environ["QT_QPA_FONTDIR"] == "/usr/share/fonts"
    monkeypatch.setenv("QT_QPA_FONTDIR", str(cv2_qt / "fonts"))
    assert drop_opencv_qt_overrides() == ["QT_QPA_FONTDIR"]
    assert drop_opencv_qt_overrides() == []


@pytest.mark.slow
def test_built_bundle_passes_its_self_test(tmp_path: Path) -> None:
    """dist/visage/visage --self-test, run from an unrelated folder (skipped until built)."""
    if not BUNDLE.is_file():
        pytest.skip(f"no bundle at {BUNDLE}: build it with `make app`")
    env = {k: v for k, v in os.environ.items() if k not in ("VISAGE_ASSETS", "PYTHONPATH")}
    result = subprocess.run(
        [str(BUNDLE), "--self-test"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "running from the frozen bundle" in log
    assert f"assets in {BUNDLE.parent / '_internal' / 'assets'}" in log
    assert "eager on cpu" in log or "cuda" in log
    assert "self-test passed" in log
