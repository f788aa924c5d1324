"""The `visage` command in-process: doctor, render, and one clear line (exit 2) per user error."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.capture.video_source import VideoFileSource, ffmpeg_executable, probe_video
from engine.capture.virtual_camera import install_hint, probe_virtual_camera
from engine.cli import main
from engine.landmarks.mediapipe_tracker import detect_faces
from engine.paths import assets_dir

GRACE = assets_dir() / "portraits" / "grace_hopper.jpg"
SAMPLE = assets_dir() / "driving" / "sample.mp4"


def _doctor_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(\S.*?)\s{2,}(\S.*)", line)
        assert match is not None, f"unexpected doctor line: {line!r}"
        rows[match[1]] = match[2]
    return rows


def _frames(path: Path) -> list[np.ndarray]:
    with VideoFileSource(path) as source:
        return [frame.image for frame in source]


def _one_line_error(
    argv: list[str], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> str:
    """Run the CLI, expect exit code 2 and exactly one single-line error; return it."""
    with caplog.at_level(logging.INFO):
        code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].exc_info is None, "the error must not carry a traceback"
    message = errors[0].getMessage()
    assert "\n" not in message, message
    for text in (captured.out, captured.err, caplog.text):
        assert "Traceback" not in text
    return message


# --- doctor -----------------------------------------------------------------------------------


def test_doctor_reports_every_backend(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    assert main(["doctor"]) == 0
    rows = _doctor_rows(capsys.readouterr().out)
    for key in ("mediapipe", "torch", "device", "CUDA", "compile backends", "ffmpeg"):
        assert key in rows, f"doctor prints no {key!r} line: {sorted(rows)}"
    assert "virtual camera" in rows

    assert "ok" in rows["mediapipe"] and "478" in rows["mediapipe"]
    assert "FAILED" not in rows["mediapipe"]
    assert rows["torch"] == torch.__version__
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"
    assert rows["device"].startswith(expected_device), rows["device"]
    assert rows["compile backends"].split(", ")[-1] == "eager"
    assert Path(rows["ffmpeg"]).is_file()

    available, description = probe_virtual_camera()
    if available:
        assert rows["virtual camera"] == description
    else:
        assert rows["virtual camera"].startswith("no virtual camera")
        assert rows["virtual camera"].endswith(install_hint())
        if sys.platform.startswith("linux"):
            assert "v4l2loopback" in rows["virtual camera"]
            assert "modprobe" in rows["virtual camera"]


# --- render: user errors ----------------------------------------------------------------------


def test_render_missing_portrait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    argv = ["render", "--portrait", str(tmp_path / "me_at_work.jpg"), "--driving", str(SAMPLE)]
    message = _one_line_error([*argv, "--out", str(out), "--no-progress"], caplog, capsys)
    assert "me_at_work.jpg" in message
    assert "not found" in message and "Check the path" in message
    assert not out.exists()


def test_render_portrait_without_face(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    portrait = tmp_path / "empty_room.png"
    Image.new("RGB", (480, 480), (128, 128, 128)).save(portrait)
    out = tmp_path / "out.mp4"
    argv = ["render", "--portrait", str(portrait), "--driving", str(SAMPLE), "--out", str(out)]
    message = _one_line_error([*argv, "--no-progress"], caplog, capsys)
    assert "No face found in empty_room.png" in message
    assert "one clearly visible face" in message
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (np.random.default_rng(3).integers(0, 256, 50_000, np.uint8).tobytes(), "corrupt"),
        (b"", "empty (0 bytes)"),
    ],
    ids=["random-bytes", "empty"],
)
def test_render_corrupt_driving_file(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    expected: str,
) -> None:
    driving = tmp_path / "call_recording.mp4"
    driving.write_bytes(content)
    out = tmp_path / "out.mp4"
    argv = ["render", "--portrait", str(GRACE), "--driving", str(driving), "--out", str(out)]
    message = _one_line_error([*argv, "--no-progress"], caplog, capsys)
    assert "call_recording.mp4" in message
    assert expected in message
    assert "choose another file" in message
    assert not out.exists()


def test_render_missing_camera(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    argv = ["render", "--portrait", str(GRACE), "--driving", "97", "--out", str(out)]
    message = _one_line_error([*argv, "--no-progress"], caplog, capsys)
    assert "No camera could be opened at index 97" in message
    assert "try another index" in message
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value", "complaint"),
    [
        ("--size", "10x10", "size must be between 16 and 8192"),
        ("--size", "big", "size must look like 512x512"),
        ("--expression", "5", "strengths are within [0, 2]"),
        ("--pose", "-1", "strengths are within [0, 2]"),
    ],
)
def test_render_rejects_bad_values(
    capsys: pytest.CaptureFixture[str], option: str, value: str, complaint: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["render", option, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert option in err and complaint in err
    assert "Traceback" not in err


# --- render: success --------------------------------------------------------------------------


def test_render_sample_clip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tmp" / "out.mp4"
    out.parent.mkdir()
    argv = ["render", "--portrait", str(GRACE), "--driving", str(SAMPLE), "--max-frames", "20"]
    with caplog.at_level(logging.INFO):
        code = main([*argv, "--size", "256x256", "--out", str(out), "--no-progress"])
    assert code == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    info = probe_video(out)
    assert (info.width, info.height) == (256, 256)
    assert info.fps == Fraction(25)
    assert not info.has_audio  # the bundled sample clip is silent
    frames = _frames(out)
    assert len(frames) == 20
    assert all(f.shape == (256, 256, 3) for f in frames)
    assert 30 < frames[10].mean() < 230, "the avatar frame is blank"
    assert len(detect_faces(frames[10])) == 1, "the avatar shows no face"
    assert re.search(r"wrote .*out\.mp4: 20 frames at 25 fps", caplog.text), caplog.text


def test_render_keeps_the_driver_audio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    driving = tmp_path / "talk_with_sound.mp4"
    command = [
        ffmpeg_executable(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-i",
        str(SAMPLE),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-frames:v",
        "50",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(driving),
    ]
    result = subprocess.run(command, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert probe_video(driving).has_audio

    out = tmp_path / "avatar.mp4"
    argv = ["render", "--portrait", str(GRACE), "--driving", str(driving), "--size", "128x128"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    info = probe_video(out)
    assert info.has_audio, "the driver's audio track was dropped"
    assert (info.width, info.height) == (128, 128)
    assert info.fps == Fraction(25)
    assert len(_frames(out)) == 50


def test_render_with_missing_network_folder_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["render", "--portrait", str(GRACE), "--driving", str(SAMPLE), "--max-frames", "3"]
    argv += ["--out", str(tmp_path / "o.mp4"), "--models", str(tmp_path / "nowhere")]
    message = _one_line_error(argv, caplog, capsys)
    assert "no trained cpu-tier networks" in message and "--no-nets" in message
    assert not (tmp_path / "o.mp4").exists()


def test_render_uses_the_networks_unless_told_not_to(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With trained networks in --models the render runs them (and says which); --no-nets gives
    the geometric path. Both render faces; the two differ only where the networks act."""
    from engine.models.store import save_model
    from engine.runtime.neural import untrained_models

    models = untrained_models("cpu")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    torch.nn.init.normal_(models.fusion.head.weight, std=2e-2)  # a visible residual
    save_model(models.warp, tmp_path / "nets" / "warp")
    save_model(models.fusion, tmp_path / "nets" / "fusion")
    base = ["render", "--portrait", str(GRACE), "--driving", str(SAMPLE), "--max-frames", "6"]
    base += ["--size", "256x256", "--no-progress", "--backend", "eager"]
    with caplog.at_level(logging.INFO):
        assert (
            main([*base, "--models", str(tmp_path / "nets"), "--out", str(tmp_path / "n.mp4")]) == 0
        )
    assert "networks: cpu tier" in caplog.text
    assert main([*base, "--no-nets", "--out", str(tmp_path / "g.mp4")]) == 0
    neural, geometric = _frames(tmp_path / "n.mp4"), _frames(tmp_path / "g.mp4")
    assert len(neural) == len(geometric) == 6
    assert len(detect_faces(neural[3])) == 1
    diff = np.abs(neural[3].astype(int) - geometric[3].astype(int)).mean()
    assert 0.5 < diff < 40


# --- self-test --------------------------------------------------------------------------------


def test_self_test_renders_the_sample_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    """`visage --self-test` runs the real pipeline (networks included) and logs its report."""
    with caplog.at_level(logging.INFO):
        code = main(["--self-test"])
    assert code == 0, caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    text = caplog.text
    assert "running from the source tree" in text
    assert "rendered 30 frames 512x512 of mona_lisa.jpg driven by sample.mp4 (encoded 30)" in text
    assert re.search(r"networks: cpu tier, (torch\.compile|eager) on cpu", text), text
    assert re.search(r"device (cpu|cuda)", text)
    assert re.search(r"\d+\.\d ms/frame in the engine", text)
    assert re.search(r"tracked in (2[4-9]|30)/30 frames", text)
    assert "face in avatar: yes" in text
    assert text.rstrip().endswith("self-test passed")


def test_self_test_fails_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken installation (here: a bundled portrait without a face) exits 1, saying why."""
    (tmp_path / "portraits").mkdir()
    Image.new("RGB", (320, 320), (90, 90, 90)).save(tmp_path / "portraits" / "mona_lisa.jpg")
    monkeypatch.setenv("VISAGE_ASSETS", str(tmp_path))
    with caplog.at_level(logging.INFO):
        code = main(["--self-test"])
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("self-test FAILED: No face found"), errors
    assert "self-test passed" not in caplog.text


def test_self_test_checks_name_each_failure() -> None:
    """Each sanity check of the self-test fails on its own and names what is wrong."""
    from dataclasses import replace

    from engine.runtime.selftest import SelfTestResult

    good = SelfTestResult(
        portrait="p.jpg",
        clip="c.mp4",
        frames=30,
        encoded_frames=30,
        size=(512, 512),
        expected_size=(512, 512),
        faces_found=30,
        motion=12.0,
        to_portrait=4.0,
        to_driver=70.0,
        avatar_face=True,
        engine_ms=40.0,
        landmarks_ms=7.0,
        networks_ms=25.0,
        wall_ms=60.0,
        backend="cpu tier, eager on cpu",
        device="cpu",
        requested=30,
    )
    assert good.problems() == []
    assert len(good.report()) == 4
    broken = {
        "expected 30 frames": replace(good, encoded_frames=0),
        "frames are 256x256": replace(good, size=(256, 256)),
        "tracked in only 3 frames": replace(good, faces_found=3),
        "does not move": replace(good, motion=0.0),
        "looks like the driving frames": replace(good, to_portrait=70.0, to_driver=4.0),
        "no face found in the avatar": replace(good, avatar_face=False),
    }
    for expected, result in broken.items():
        problems = result.problems()
        assert len(problems) == 1 and expected in problems[0], (expected, problems)
