"""The personalization commands end to end: `visage personalize` refusing a poor recording,
`visage profiles`, `visage render --profile`, and the personalization benchmark on a real clip."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.capture.video_source import VideoFileSource
from engine.cli import main
from engine.evaluation.personalize_bench import bench_person, format_results, plot_results
from engine.runtime.neural import tier_folder
from tests.personalize_tools import make_profile


def test_personalize_refuses_a_poor_recording_with_what_to_do(
    sample_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "me"
    with caplog.at_level(logging.INFO):
        code = main(["personalize", "--video", str(sample_clip), "--out", str(out)])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Turn your head" in errors[0] and "Blink" in errors[0]
    assert not out.exists()


def test_profiles_command_lists_renames_deletes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "profiles"
    assert main(["profiles", "--root", str(root)]) == 0
    assert "no profiles" in capsys.readouterr().out
    make_profile(root / "sample")
    assert main(["profiles", "--root", str(root), "--rename", "sample", "Someone"]) == 0
    assert "sample\tSomeone\t" in capsys.readouterr().out
    assert main(["profiles", "--root", str(root), "--delete", "sample"]) == 0
    assert not (root / "sample").exists()


def test_render_with_a_profile_shows_its_face(sample_clip: Path, tmp_path: Path) -> None:
    make_profile(tmp_path / "p")
    out = tmp_path / "out.mp4"
    argv = ["render", "--profile", str(tmp_path / "p"), "--driving", str(sample_clip)]
    assert main([*argv, "--max-frames", "6", "--out", str(out), "--no-progress"]) == 0
    with VideoFileSource(out) as video:
        frames = [f.image for f in video]
    source = cv2.imread(str(tmp_path / "p" / "source.png"))[..., ::-1]
    assert len(frames) == 6 and frames[0].shape == source.shape
    # The avatar is the profile's face, not the driving frame.
    with VideoFileSource(sample_clip, max_frames=1) as video:
        driving = cv2.resize(next(iter(video)).image, source.shape[1::-1])
    diff_source = np.abs(frames[0].astype(int) - source).mean()
    assert diff_source < np.abs(frames[0].astype(int) - driving).mean()


@pytest.mark.slow
def test_personalization_benchmark_on_a_real_clip(sample_clip: Path, tmp_path: Path) -> None:
    starts = {"pretrained": tier_folder("cpu"), "again": tier_folder("cpu")}
    result = bench_person(sample_clip, "sample", starts, (0, 2), max_frames=60, test_frames=4)
    assert [(p.start, p.steps) for p in result.points] == [
        ("pretrained", 0),
        ("pretrained", 2),
        ("again", 0),
        ("again", 2),
    ]
    zero, two = result.points[:2]
    assert zero.seconds < 0.01 < two.seconds and 12 < two.scores.psnr < 60
    assert result.points[2].scores.psnr == pytest.approx(zero.scores.psnr)  # same start, same 0
    table = format_results([result], list(starts))
    assert "| pretrained | 2 |" in table and "geometric path" in table
    plot_results([result], list(starts), tmp_path / "plot.png")
    image = cv2.imread(str(tmp_path / "plot.png"))
    assert image.shape == (540, 900, 3) and (image < 128).any()
