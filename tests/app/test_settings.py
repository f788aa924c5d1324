"""The settings file: round trip, defaults for missing, corrupt, old or odd files, atomic writes."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from app.settings_store import VERSION, Settings, SettingsStore, default_settings_path


def test_round_trip(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "deep" / "settings.json")
    settings = Settings(
        portrait="/pictures/me.jpg",
        user_portraits=("/pictures/me.jpg", "/pictures/gran.png"),
        source_kind="camera",
        camera=2,
        resolution=(1280, 720),
        mirror=False,
        expression=1.4,
        pose=0.6,
        smoothing=0.8,
        show_landmarks=True,
        virtual_camera_size=(640, 480),
        calibration_offered=True,
        profile="/data/visage/profiles/me",
    )
    store.save(settings)
    assert store.load() == settings
    document = json.loads(store.path.read_text())
    assert document["version"] == VERSION and document["settings"]["camera"] == 2
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["settings.json"]  # no temp


def test_a_file_from_before_profiles_still_loads(tmp_path: Path) -> None:
    """Fields are only added: a version-1 file written before `profile` existed loads whole."""
    path = tmp_path / "settings.json"
    older = {"portrait": "/pictures/me.jpg", "camera": 1, "mirror": False, "pose": 0.4}
    path.write_text(json.dumps({"version": 1, "settings": older}))
    loaded = SettingsStore(path).load()
    assert loaded == Settings(portrait="/pictures/me.jpg", camera=1, mirror=False, pose=0.4)
    assert loaded.profile == ""


def test_missing_file_gives_defaults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert SettingsStore(tmp_path / "settings.json").load() == Settings()
    assert "no settings at" in caplog.text


@pytest.mark.parametrize("content", ['{"version": 1, "settings": {"pose": 0.3', "\x00\xff", "[]"])
def test_corrupt_file_gives_defaults_and_is_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content.encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        assert SettingsStore(path).load() == Settings()
    assert "using the defaults" in caplog.text and "settings.json.corrupt" in caplog.text
    assert (tmp_path / "settings.json.corrupt").read_bytes() == content.encode("latin-1")
    assert not path.exists()


def test_other_version_gives_defaults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 0, "settings": {"pose": 0.3}}))
    with caplog.at_level(logging.WARNING):
        assert SettingsStore(path).load() == Settings()
    assert "version 0" in caplog.text and path.exists()  # kept: a newer Visage may want it


def test_a_bad_field_falls_back_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "settings.json"
    fields = {"pose": 0.3, "camera": "front", "resolution": [640], "mirror": 1, "expression": 2}
    path.write_text(json.dumps({"version": VERSION, "settings": {**fields, "future": True}}))
    with caplog.at_level(logging.WARNING):
        settings = SettingsStore(path).load()
    assert settings == Settings(pose=0.3, expression=2.0)
    for name in ("camera", "resolution", "mirror"):
        assert f"ignoring {name}=" in caplog.text


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    store.save(Settings(pose=0.2))

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.save(Settings(pose=1.7))
    monkeypatch.undo()
    assert store.load() == Settings(pose=0.2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_settings_live_in_the_config_folder(config_dir: Path) -> None:
    assert default_settings_path() == config_dir / "settings.json"
