"""Cross-identity evaluation (engine.evaluation.cross) on a real portrait and a real clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import VisageError
from engine.evaluation.cross import cross_pairs, evaluate_cross, format_cross_table
from engine.evaluation.reenactment import GEOMETRIC
from engine.runtime.neural import untrained_models
from tests.conftest import shared_clip


def test_cross_pairs_cycle_through_the_drivers() -> None:
    ps = [Path(f"p{i}.png") for i in range(5)]
    cs = [Path("a.mp4"), Path("b.mp4")]
    assert [c.name for _, c in cross_pairs(ps, cs, 3)] == ["a.mp4", "b.mp4", "a.mp4"]
    assert len(cross_pairs(ps, cs, 10)) == 5 and cross_pairs([], cs, 3) == []


@pytest.mark.slow
def test_cross_scores_follow_the_driver_and_keep_the_portrait(portraits_dir: Path) -> None:
    clip = shared_clip("videos/aoc/V-Express__test_samples_short_case_AOC_gt.mp4")
    methods = {GEOMETRIC: None, "untrained nets": untrained_models("cpu")}
    r = evaluate_cross(portraits_dir / "mona_lisa.jpg", clip, methods, 40, backend="eager")
    geo, nets = r.scores[GEOMETRIC], r.scores["untrained nets"]
    assert r.frames == 40
    assert geo.mouth_corr > 0.4  # the Mona Lisa talks with the driver
    assert 0.95 < geo.id_sim <= 1.0 + 1e-6  # and stays the Mona Lisa
    # Zero-initialized networks are the geometric path, so they score the same.
    np.testing.assert_allclose(
        [nets.id_sim, nets.mouth_corr, nets.eye_corr],
        [geo.id_sim, geo.mouth_corr, geo.eye_corr],
        atol=0.01,
    )
    table = format_cross_table([r])
    assert "| geometric engine |" in table and "untrained nets better than" in table


def test_portrait_without_a_face_is_refused(tmp_path: Path) -> None:
    import cv2

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, np.uint8))
    clip = shared_clip("videos/aoc/V-Express__test_samples_short_case_AOC_gt.mp4")
    with pytest.raises(VisageError):
        evaluate_cross(blank, clip, {GEOMETRIC: None}, 5)


@pytest.mark.slow
def test_eval_cross_scores_the_split_asked_for(tmp_path: Path, portraits_dir: Path) -> None:
    """`visage eval --cross N --split validation` drives the validation portraits only."""
    import json

    from engine.cli import main
    from engine.training.cross import portrait_split

    folder = tmp_path / "portraits"
    folder.mkdir()
    for i in range(5):  # the Mona Lisa under five names: test p3, validation p0
        (folder / f"p{i}.jpg").symlink_to(portraits_dir / "mona_lisa.jpg")
    videos = tmp_path / "videos" / "amy_klobuchar"  # a held-out person drives
    videos.mkdir(parents=True)
    (videos / "a.mp4").symlink_to(
        shared_clip("videos/aoc/V-Express__test_samples_short_case_AOC_gt.mp4")
    )
    split = portrait_split(folder)
    scored = {}
    for role in ("validation", "test"):
        out = tmp_path / f"{role}.json"
        argv = ["eval", "--cross", "5", "--split", role, "--no-nets", "--max-frames", "5"]
        argv += [
            "--portraits",
            str(folder),
            "--clips",
            str(tmp_path / "videos"),
            "--json",
            str(out),
        ]
        assert main(argv) == 0
        scored[role] = [r["portrait"] for r in json.loads(out.read_text())]
    assert scored["validation"] == [p.name for p in split.validation] == ["p0.jpg"]
    assert scored["test"] == [p.name for p in split.test] == ["p3.jpg"]
