"""`visage`: the window without a subcommand, the engine's CLI otherwise, `--headless` as before."""

from __future__ import annotations

import argparse
import logging
from typing import Any

import pytest

import app.launcher as launcher
import engine.cli
from app.models.camera import SAMPLE, SourceChoice


def test_no_subcommand_opens_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[launcher.AppOptions] = []
    monkeypatch.setattr(launcher, "run_app", lambda options: opened.append(options) or 0)
    assert launcher.main([]) == 0
    assert opened == [launcher.AppOptions()]


def test_headless_renders_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[argparse.Namespace] = []

    def render(args: argparse.Namespace) -> int:
        rendered.append(args)
        return 0

    def window(args: Any) -> int:
        raise AssertionError("--headless must not open a window")

    monkeypatch.setattr(engine.cli, "cmd_render", render)
    assert engine.cli.main(["--headless"], gui=window) == 0
    assert rendered[0].out == "visage_output.mp4" and rendered[0].portrait is None


def test_subcommands_are_the_engines(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert launcher.main(["render", "--portrait", "/no/such/portrait.jpg"]) == 2
    assert "Portrait not found: /no/such/portrait.jpg" in caplog.text


def test_without_a_display_it_says_how_to_render_instead(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.ERROR):
        assert launcher.main([]) == 2
    assert "No display found" in caplog.text and "visage --headless" in caplog.text


def test_driving_option(tmp_path: Any) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    assert launcher.source_choice("sample") == SAMPLE
    assert launcher.source_choice("1") == SourceChoice("camera", camera=1)
    assert launcher.source_choice(str(clip)) == SourceChoice("file", path=str(clip.resolve()))
    with pytest.raises(argparse.ArgumentTypeError):
        launcher.source_choice(str(tmp_path / "missing.mp4"))
