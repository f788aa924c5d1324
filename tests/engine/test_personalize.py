"""Personalization: recording checks on real frames, the source-frame choice, profiles written
atomically, a fine-tune that lowers the loss, cancellation that writes nothing, Reptile."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.capture.image_file import load_image
from engine.models.identity import load_identity_encoder
from engine.personalize import profile as profile_mod
from engine.personalize.capture import FrameCheck, check_recording, coverage
from engine.personalize.personalize import (
    PersonalizeCancelledError,
    RecordingRejectedError,
    analyse_recording,
    personalize,
)
from engine.personalize.profile import (
    ProfileError,
    delete_profile,
    list_profiles,
    load_profile,
    rename_profile,
    save_profile,
)
from engine.personalize.source import most_neutral, pick_source
from engine.runtime.neural import load_models, tier_folder
from engine.training.finetune import FineTuneConfig, FineTuner, fine_tune, load_generator
from engine.training.identities import clip_identities
from engine.training.meta import MetaConfig, run_meta
from engine.training.pairs import PairSampler
from engine.types import Landmarks
from tests.engine.training_tools import sample_clip_data
from tests.personalize_tools import tree_digest


@pytest.fixture(scope="module")
def sample_images(sample_clip: Path) -> tuple[list[np.ndarray], float]:
    from engine.personalize.command import read_recording

    return read_recording(sample_clip, 60.0)


@pytest.fixture(scope="module")
def analysis(sample_images):  # type: ignore[no-untyped-def]
    images, fps = sample_images
    return analyse_recording(images, fps)


# -- recording checks ---------------------------------------------------------------------------
def test_frame_problems_are_instructions() -> None:
    assert "sit in front" in FrameCheck(0).problems[0]
    many = FrameCheck(2, size=0.2, brightness=120.0)
    assert any("only you" in p for p in many.problems)
    small_dark = FrameCheck(1, size=0.01, brightness=10.0)
    assert {"move closer" in p or "Too dark" in p for p in small_dark.problems} == {True}
    assert FrameCheck(1, size=0.2, brightness=120.0).problems == ()


def test_coverage_counts_only_clear_frames_and_says_what_is_missing() -> None:
    turning = [FrameCheck(1, 0.2, 120.0, float(y), 0.0, 0.0, 0.3) for y in range(-10, 11)]
    crowded = [FrameCheck(2, 0.2, 120.0, 40.0, 30.0, 1.0, 0.0)] * 5  # never counted
    covered = coverage(turning + crowded)
    assert 17 < covered.yaw < 21 and covered.pitch == 0.0
    assert covered.missing == (
        "Look further up and down.",
        "Talk or smile during the recording so that your mouth moves.",
        "Blink a few times during the recording.",
    )
    assert check_recording(turning + crowded, 1.0).reasons[-3:] == covered.missing


def test_real_clip_without_enough_movement_is_rejected_with_reasons(
    analysis, sample_images, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The bundled sample: 12 s of a real face that barely turns and never blinks."""
    report = analysis.report
    assert len(report.usable) == len(analysis.checks)  # one clear face throughout
    assert not report.ok
    assert any("left and to the right" in r for r in report.reasons)
    assert any("Blink" in r for r in report.reasons)
    images, fps = sample_images
    with pytest.raises(RecordingRejectedError, match="Turn your head"):
        personalize(images, fps, tmp_path / "me", "me")
    assert not (tmp_path / "me").exists()


def test_short_dark_and_crowded_recordings_are_rejected(sample_images, portraits_dir: Path) -> None:  # type: ignore[no-untyped-def]
    images, fps = sample_images
    short = analyse_recording(images[:60], fps).report
    assert any("at least 10 s" in r for r in short.reasons)
    dark = analyse_recording([(im * 0.12).astype(np.uint8) for im in images[:40]], 4.0).report
    assert any("Too dark" in r for r in dark.reasons)
    face = load_image(portraits_dir / "grace_hopper.jpg")
    pair = np.concatenate([face, face], axis=1)  # two real faces side by side
    crowded = analyse_recording([pair] * 12, 1.0).report
    assert any("only you" in r for r in crowded.reasons)
    empty = analyse_recording([np.full((240, 320, 3), 90, np.uint8)] * 12, 1.0).report
    assert any("No face" in r for r in empty.reasons)


def test_source_frame_is_a_neutral_one(sample_images, analysis) -> None:  # type: ignore[no-untyped-def]
    """Mouth among the most closed quarter, eyes at least as open as usual, head within a few
    degrees of the user's usual pose."""
    images, _ = sample_images
    usable = analysis.report.usable
    src = pick_source(images, analysis.landmarks, analysis.checks, usable)
    c = analysis.checks[src]
    checks = [analysis.checks[i] for i in usable]
    assert c.mouth <= np.percentile([k.mouth for k in checks], 25)
    assert c.eyes >= np.median([k.eyes for k in checks])
    assert abs(c.yaw - np.median([k.yaw for k in checks])) < 5.0
    assert abs(c.pitch - np.median([k.pitch for k in checks])) < 5.0


def test_most_neutral_matches_the_source_pick_and_skips_faceless_frames(  # type: ignore[no-untyped-def]
    sample_images, analysis
) -> None:
    images, _ = sample_images
    usable = analysis.report.usable
    landmarks = [analysis.landmarks[i] for i in usable]
    picked = most_neutral([images[i] for i in usable], landmarks)
    assert usable[picked] == pick_source(images, analysis.landmarks, analysis.checks, usable)
    # A frame without a face is never the neutral one; no face at all is an error.
    assert most_neutral([images[0], images[usable[0]]], [None, landmarks[0]]) == 1
    with pytest.raises(ValueError):
        most_neutral([images[0]], [None])


# -- profiles -----------------------------------------------------------------------------------
def _save(folder: Path, name: str, seed: int = 0) -> None:
    generator = load_generator(tier_folder("cpu"))
    torch.manual_seed(seed)
    with torch.no_grad():
        next(generator.fusion.parameters()).add_(torch.randn(1).item() * 1e-3)  # type: ignore[union-attr]
    clip = sample_clip_data()
    lm_points = clip.points[0]
    save_profile(
        folder,
        generator,
        clip.crops[0],
        Landmarks(lm_points, (256, 256)),
        name=name,
        tier="cpu",
        steps=3,
        seconds=1.5,
    )


def test_profile_round_trip_rename_delete(tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    _save(root / "me", "Me")
    info = load_profile(root / "me")
    assert (info.name, info.tier, info.steps) == ("Me", "cpu", 3)
    models = load_models("cpu", info.folder)  # loads strictly, like the shipped networks
    assert models.fusion is not None
    assert load_image(info.source).shape == (256, 256, 3)
    assert rename_profile(root / "me", "  Work me ").name == "Work me"
    assert [p.name for p in list_profiles(root)] == ["Work me"]
    delete_profile(root / "me")
    assert list_profiles(root) == [] and not any(root.iterdir())
    with pytest.raises(ProfileError, match="not a complete profile"):
        load_profile(root / "me")


def test_failed_save_leaves_the_old_profile_and_no_debris(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "profiles"
    _save(root / "me", "Me")
    before = tree_digest(root / "me")

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(profile_mod.np, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        _save(root / "me", "Me again", seed=1)
    assert tree_digest(root / "me") == before
    assert sorted(p.name for p in root.iterdir()) == ["me"]


def test_interrupted_swap_is_finished_by_listing(tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    _save(root / "me", "Me")
    (root / "me").rename(root / ".me.old-1234abcd")  # the crash: old moved away, new not in
    assert [p.name for p in list_profiles(root)] == ["Me"]
    assert (root / "me").is_dir()


# -- fine-tuning --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def person():  # type: ignore[no-untyped-def]
    clip = sample_clip_data()
    return clip, clip_identities([clip], load_identity_encoder())


def test_short_fine_tune_on_a_real_clip_lowers_the_loss(person) -> None:  # type: ignore[no-untyped-def]
    clip, idents = person
    generator = load_generator(tier_folder("cpu"))
    held = PairSampler([clip], idents, seed=5, source=0).sample(4)  # fixed evaluation pairs

    def loss() -> float:
        fresh = load_generator(tier_folder("cpu"))
        probe = FineTuner(fresh, FineTuneConfig(lr=0.0), torch.device("cpu"))
        probe.generator.load_state_dict(generator.state_dict())
        return probe.step(held)  # lr 0: measures without changing anything

    before = loss()
    result = fine_tune(
        generator,
        PairSampler([clip], idents, seed=1, source=0),
        FineTuneConfig(),
        budget_s=600.0,
        max_steps=12,
    )
    assert result.steps == 12 and not result.cancelled
    assert loss() < 0.97 * before


def test_budget_is_kept_and_progress_reported(person) -> None:  # type: ignore[no-untyped-def]
    clip, idents = person
    seen = []
    result = fine_tune(
        load_generator(tier_folder("cpu")),
        PairSampler([clip], idents, seed=1, source=0),
        FineTuneConfig(batch=1),
        budget_s=3.0,
        progress=seen.append,
    )
    assert result.seconds <= 3.0 + 1.0 and result.steps == len(seen) >= 1
    assert seen[-1].elapsed_s >= seen[0].elapsed_s and 0 <= seen[-1].fraction <= 1


def test_cancelled_personalization_leaves_the_previous_profile(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A recording that passes the checks, cancelled during the fine-tune."""
    from engine.personalize import personalize as pz

    root = tmp_path / "profiles"
    _save(root / "me", "Me")
    before = tree_digest(root / "me")
    clip = sample_clip_data()
    frames = list(clip.crops)
    lms = tuple(Landmarks(p, (256, 256)) for p in clip.points)
    checks = tuple(FrameCheck(1, 0.2, 120.0, 0.0, 0.0, 0.1, 0.3) for _ in frames)
    report = dataclasses.replace(
        check_recording(checks, 2.0), ok=True, reasons=(), usable=tuple(range(len(frames)))
    )
    monkeypatch.setattr(pz, "analyse_recording", lambda *_: pz.Analysis(lms, checks, report))
    cancel = threading.Event()
    with pytest.raises(PersonalizeCancelledError):
        personalize(
            frames,
            2.0,
            root / "me",
            "Me again",
            budget_s=600.0,
            init=tier_folder("cpu"),
            progress=lambda p: cancel.set() if p.step >= 2 else None,
            cancel=cancel,
        )
    assert tree_digest(root / "me") == before
    assert sorted(p.name for p in root.iterdir()) == ["me"]


# -- meta-training ------------------------------------------------------------------------------
def test_reptile_moves_the_weights_and_resumes(person, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip, idents = person
    other = dataclasses.replace(clip, name="other", identity="someone_else")
    idents = {**idents, "other": idents[clip.name]}
    cfg = MetaConfig(outer_steps=2, inner_steps=1, inner=FineTuneConfig(batch=1), save_every=1)
    run_meta(cfg, [clip, other], idents, tier_folder("cpu"), tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["step"] == 2
    base = load_generator(tier_folder("cpu")).state_dict()
    moved = load_generator(tmp_path).state_dict()
    assert any(not torch.equal(base[k], moved[k]) for k in base)
    run_meta(dataclasses.replace(cfg, outer_steps=3), [clip, other], idents, tmp_path, tmp_path)
    assert json.loads((tmp_path / "meta.json").read_text())["step"] == 3


def test_meta_training_needs_two_people(person, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip, idents = person
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="2\\+ people"):
        run_meta(MetaConfig(outer_steps=1), [clip], idents, tier_folder("cpu"), tmp_path)
