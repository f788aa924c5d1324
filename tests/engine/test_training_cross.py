"""Cross-identity sources (engine.training.cross): a real portrait driven by a real clip through
the engine's Pipeline, lookalikes of held-out people left out, the sampler's pairs, and the
identity loss on them training the networks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.landmarks.topology import mouth_opening
from engine.models.identity import load_identity_encoder
from engine.paths import portraits_dir
from engine.training.clips import load_clip
from engine.training.cross import (
    DRIVER_FRAMES,
    HOLD_OUT_EVERY,
    VALIDATE_EVERY,
    cache_cross,
    cross_clip,
    is_cross,
    lookalikes,
    portrait_split,
)
from engine.training.identities import clip_identities
from engine.training.objectives import geometric_mouth
from engine.training.pairs import CrossSampler, PairSampler
from engine.training.trainer import TrainConfig, Trainer
from tests.engine.training_tools import sample_clip_data, tiny_nets


@pytest.fixture(scope="module")
def driver():  # type: ignore[no-untyped-def]
    return sample_clip_data()  # Grace Hopper, 24 frames


@pytest.fixture(scope="module")
def mona(driver):  # type: ignore[no-untyped-def]
    clip = cross_clip(portraits_dir() / "mona_lisa.jpg", driver)
    assert clip is not None
    return clip


def test_portrait_split_is_stable_and_disjoint(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / ("a" if i % 2 else "b")).mkdir(exist_ok=True)
        (tmp_path / ("a" if i % 2 else "b") / f"p{i:02d}.png").touch()
    (tmp_path / "notes.txt").touch()
    split = portrait_split(tmp_path)
    train, val, test = set(split.train), set(split.validation), set(split.test)
    assert len(train) + len(val) + len(test) == 40
    assert not train & val and not train & test and not val & test
    assert len(test) == 40 // HOLD_OUT_EVERY
    assert len(val) == -(-(40 - len(test)) // VALIDATE_EVERY)
    assert all(p.suffix == ".png" for p in train | val | test)
    assert portrait_split(tmp_path) == split
    assert split.names("validation") == {f"portrait:{p.stem}" for p in val}


def test_portrait_driven_by_a_clip(mona, driver) -> None:  # type: ignore[no-untyped-def]
    assert is_cross(mona) and mona.frames == 1 and mona.valid[0]
    drive = mona.drive
    n = min(driver.frames, DRIVER_FRAMES)
    assert drive is not None and list(drive.sources) == [0]
    assert drive.targets.shape == (1, n, 478, 3) and drive.valid[0].all()
    # The portrait's mouth opens and closes with the driver's.
    mouths_t = [mouth_opening(p) for p in drive.targets[0]]
    mouths_d = [mouth_opening(p) for p in driver.points[:n]]
    assert np.corrcoef(mouths_t, mouths_d)[0, 1] > 0.8
    # The targets stay on the portrait's face (its crop), not the driver's.
    centre = drive.targets[0, :, :, :2].mean(1)
    assert np.abs(centre - drive.portrait[0, :, :2].mean(0)).max() < 20


def test_no_face_portrait_and_cache(driver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 128, np.uint8))
    assert cross_clip(blank, driver) is None
    paths = cache_cross([blank, portraits_dir() / "eileen_collins.png"], [driver], tmp_path / "c")
    assert [p.name for p in paths] == ["portrait__eileen_collins.npz"]
    back = load_clip(paths[0])
    assert is_cross(back) and back.drive is not None and back.drive.targets.shape[1] == 24


def test_lookalikes_of_held_out_people(mona, driver) -> None:  # type: ignore[no-untyped-def]
    grace = cross_clip(portraits_dir() / "grace_hopper.jpg", driver)
    assert grace is not None
    encoder = load_identity_encoder()
    portraits = clip_identities([mona, grace], encoder)
    person = clip_identities([driver], encoder)[driver.name]  # Grace Hopper's clip
    assert lookalikes(portraits, [person]) == {"portrait:grace_hopper"}
    assert lookalikes(portraits, []) == set()


def test_cross_pairs_and_identity_training(mona, driver) -> None:  # type: ignore[no-untyped-def]
    encoder = load_identity_encoder()
    idents = clip_identities([mona, driver], encoder)
    crosses = CrossSampler([mona, driver], idents, seed=0)
    assert crosses.clips == [mona]  # a regular clip is not a cross source
    c = crosses.sample_cross(2)
    assert c.source.shape == (2, 3, 256, 256) and c.grid.shape == (2, 256, 256, 2)
    assert c.tmap.shape == (2, 5, 256, 256) and c.target_points.shape == (2, 478, 3)
    assert mona.drive is not None
    assert any(
        np.allclose(c.target_points[0].numpy(), t) for t in mona.drive.targets[0]
    )  # the recorded targets
    # The identity loss on cross pairs alone trains the networks to keep the portrait's face.
    cfg = TrainConfig(
        stage="joint",
        batch=1,
        w_perceptual=0,
        w_l1=0,
        w_region=0,
        w_identity=0,
        w_gan=0,
        w_fm=0,
        w_cross_identity=1.0,
        identity_every=1,
        lr=1e-3,
    )
    torch.manual_seed(0)
    nets = tiny_nets("joint")
    assert nets.generator.fusion is not None
    torch.nn.init.normal_(nets.generator.fusion.head.weight, std=0.05)  # start off-identity
    trainer = Trainer(cfg, nets, torch.device("cpu"))
    selfs = PairSampler([driver], idents, seed=1)
    fixed = crosses.sample_cross(1)
    losses = [trainer.step(selfs.sample(1), fixed)["cross_identity"] for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0], losses


def test_cross_identity_loss_leaves_the_mouth_to_the_driver(mona, driver) -> None:  # type: ignore[no-untyped-def]
    """The identity loss on cross pairs sees the geometric path's mouth: no gradient reaches
    the output's mouth region, and everything else is the output itself."""
    c = CrossSampler([mona], clip_identities([mona], load_identity_encoder()), seed=2).sample_cross(
        2
    )
    image = torch.rand(2, 3, 256, 256, requires_grad=True)
    geometric = torch.rand(2, 3, 256, 256)
    shown = geometric_mouth(image, geometric, c.target_points)
    shown.sum().backward()
    assert image.grad is not None
    mouth = image.grad[:, 0] == 0  # (B, S, S): where the output cannot act
    area = mouth.float().mean().item()
    assert 0.002 < area < 0.1  # the mouth, not nothing and not the face
    m = mouth[0]
    torch.testing.assert_close(shown.detach()[0][:, m], geometric[0][:, m])
    far = image.grad[0, 0] == 1  # untouched by the mask
    assert far.float().mean() > 0.8
    torch.testing.assert_close(shown.detach()[0][:, far], image.detach()[0][:, far])
