"""App tests run offscreen (no display needed) with real PySide6 widgets and a real engine.

Settings and profiles go to per-test folders ($VISAGE_CONFIG_DIR, $VISAGE_DATA), never the
user's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.qt_env import prepare_qt_environment

prepare_qt_environment()


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The GUI, capture, processing and worker threads share the cores: torch gets one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("VISAGE_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Per-test user data: profiles live in data_dir / "profiles"."""
    folder = tmp_path / "data"
    monkeypatch.setenv("VISAGE_DATA", str(folder))
    return folder


@pytest.fixture
def live_window(qtbot: Any, config_dir: Path) -> Iterator[Callable[..., Any]]:
    """Opens the real window on a real engine (geometric path, sample clip, no webcam) and
    closes it afterwards. Keyword arguments: settings, personalize (PersonalizeOptions),
    record_seconds, runner parts."""
    from app.controller import AppController
    from app.engine_bridge import EngineBridge
    from app.main_window import MainWindow
    from app.settings_store import Settings, SettingsStore
    from engine.api import (
        RECORD_SECONDS,
        LoaderOptions,
        PersonalizeOptions,
        RunnerOptions,
        bundled_portraits,
    )
    from tests.live_tools import no_cameras

    windows: list[MainWindow] = []

    def open_window(
        settings: Settings | None = None,
        personalize: PersonalizeOptions | None = None,
        record_seconds: float = RECORD_SECONDS,
        **parts: Any,
    ) -> MainWindow:
        parts.setdefault("camera_lister", no_cameras)
        options = RunnerOptions(loader=LoaderOptions(networks=False), rescan_s=0.2, retry_s=0.3)
        bridge = EngineBridge(options, **parts)
        store = SettingsStore(config_dir / "settings.json")
        controller = AppController(
            bridge,
            settings or store.load(),
            [str(p) for p in bundled_portraits()],
            personalize=personalize,
            record_seconds=record_seconds,
        )
        window = MainWindow(controller, bridge, store)
        qtbot.addWidget(window)
        window.show()
        portrait = controller.startup_request()
        bridge.start(controller.startup_source(), portrait)
        controller.started(portrait)
        windows.append(window)
        return window

    yield open_window
    for window in windows:
        window.close()
