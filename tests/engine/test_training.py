"""Training: clip cache, pairs, a few real steps that lower the loss, checkpoints, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.models.blocks import warp
from engine.models.identity import load_identity_encoder
from engine.training.clips import load_clip, save_clip
from engine.training.enhance import enhancer_step
from engine.training.identities import clip_identities
from engine.training.pairs import PairSampler
from engine.training.trainer import LossMeter, TrainConfig, Trainer, parameter_digest, run
from tests.engine.training_tools import sample_clip_data, tiny_nets

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip():  # type: ignore[no-untyped-def]
    return sample_clip_data()


@pytest.fixture(scope="module")
def sampler(clip):  # type: ignore[no-untyped-def]
    idents = clip_identities([clip], load_identity_encoder())
    return PairSampler([clip], idents, seed=1)


def test_cache_round_trip(clip, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert clip.crops.shape == (24, 256, 256, 3) and clip.crops_hr is not None
    assert clip.crops_hr.shape == (24, 512, 512, 3)
    assert clip.valid.all() and clip.points.shape == (24, 478, 3)
    # Landmarks land on the face: the eye centres lie in the upper middle of the crop.
    eyes = clip.points[0, [468, 473], :2]
    assert np.all((eyes > 64) & (eyes < 192))
    save_clip(clip, tmp_path / "c.npz")
    back = load_clip(tmp_path / "c.npz")
    assert back.name == clip.name and back.identity == "grace_hopper"
    np.testing.assert_array_equal(back.crops, clip.crops)
    np.testing.assert_array_equal(back.points, clip.points)
    assert not list(tmp_path.glob("*.tmp*"))


def test_pairs_geometric_flow_beats_the_static_source(sampler) -> None:  # type: ignore[no-untyped-def]
    b = sampler.sample(6)
    assert b.source.shape == (6, 3, 256, 256) and b.grid.shape == (6, 256, 256, 2)
    assert b.tmap.shape == (6, 5, 256, 256) and b.ident.shape == (6, 128)
    assert torch.allclose(b.ident.norm(dim=1), torch.ones(6), atol=1e-4)
    geo = (warp(b.source, b.grid) - b.driving).abs().mean()
    static = (b.source - b.driving).abs().mean()
    assert geo < static


def test_pairs_carry_the_mouth_interior_the_app_paints(clip, sampler) -> None:  # type: ignore[no-untyped-def]
    """Batch.mouth is the cavity the app paints over the geometric warp: for the pair whose
    driving mouth opens most beyond the source's, painting it into the warped crop gives what
    paint_mouth_interior gives, and it stays inside the target's mouth."""
    from engine.geometry.mouth import lip_color as lips
    from engine.geometry.mouth import paint_mouth_interior
    from engine.landmarks.topology import load_topology, mouth_opening
    from engine.models.blocks import paint_over

    opening = [mouth_opening(p) for p in clip.points]
    s, d = int(np.argmin(opening)), int(np.argmax(opening))
    b = sampler.collate([(clip, s, d), (clip, s, s)])
    assert b.mouth is not None and b.mouth.shape == (2, 4, 256, 256)
    alpha = b.mouth[:, 3]
    assert float(alpha.min()) >= 0 and float(alpha.max()) <= 1
    assert int((alpha[0] > 0.5).sum()) > 20 and float(alpha[1].max()) == 0  # nothing revealed
    ys, xs = torch.nonzero(alpha[0] > 0, as_tuple=True)
    inner = clip.points[d][load_topology().lips_inner, :2]  # tracked target (no recording)
    assert xs.min() >= inner[:, 0].min() - 2 and xs.max() <= inner[:, 0].max() + 2
    assert ys.min() >= inner[:, 1].min() - 2 and ys.max() <= inner[:, 1].max() + 2
    painted_t = paint_over(warp(b.source[:1], b.grid[:1]), b.mouth[:1])[0]
    warped = (warp(b.source[:1], b.grid[:1])[0].permute(1, 2, 0) * 255).round().byte().numpy()
    loop = load_topology().lips_inner
    painted = warped.copy()
    colour = lips(clip.crops[s], clip.points[s].astype(np.float64), load_topology())
    paint_mouth_interior(painted, clip.points[s][loop, :2], clip.points[d][loop, :2], colour)
    diff = (painted_t.permute(1, 2, 0) * 255 - torch.from_numpy(painted).float()).abs()
    assert float(diff.mean()) < 0.5 and float(diff[alpha[0] > 0.5].mean()) < 3


def test_sampler_rejects_clips_without_pairs(clip) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    bad = replace(clip, valid=np.zeros_like(clip.valid))
    with pytest.raises(ValueError, match="no usable clips"):
        PairSampler([bad], {})


def _overfit(trainer: Trainer, batch, steps: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    first = trainer.step(batch)["total"]
    for _ in range(steps):
        last = trainer.step(batch)["total"]
    return first, last


@pytest.mark.parametrize("stage", ["warp", "joint"])
def test_training_steps_lower_the_loss(stage: str, sampler) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    cfg = TrainConfig(stage=stage, batch=2, lr=2e-3, gan_start=0, identity_every=1)
    trainer = Trainer(cfg, tiny_nets(stage), torch.device("cpu"))
    batch = sampler.sample(2)
    first, last = _overfit(trainer, batch, 12)
    assert last < 0.9 * first, (first, last)


def test_a_painted_mouth_fusion_net_adds_its_residual_over_the_painted_warp(
    sampler, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """--painted-mouth converts --init's fusion net (same weights), which then takes the warp
    with the mouth interior painted in: untrained, its output is exactly that image."""
    from dataclasses import replace

    from engine.models.blocks import paint_over
    from engine.models.fusion import FusionNet
    from engine.models.store import save_model
    from engine.training.trainer import build_nets

    nets = tiny_nets("joint")
    fusion = nets.generator.fusion
    assert fusion is not None and not fusion.config.painted_mouth
    torch.nn.init.normal_(fusion.enc[0][0].weight)  # weights the conversion must keep
    save_model(nets.generator.warp_net, tmp_path / "warp", {})
    save_model(fusion, tmp_path / "fusion", {})
    built = build_nets(replace(TrainConfig(stage="joint"), painted_mouth=True), tmp_path, None)
    painted = built.generator.fusion
    assert painted is not None and painted.config.painted_mouth
    for k, v in fusion.state_dict().items():
        assert torch.equal(painted.state_dict()[k], v), k
    b = sampler.sample(2)
    g = built.generator.eval()
    g.fusion = FusionNet(painted.config)  # zero-initialized head
    with torch.no_grad():
        out = g(b.source, b.grid, b.smap, b.tmap, b.ident, b.mouth)
    assert out.fused is not None
    assert torch.allclose(out.fused, paint_over(out.warped, b.mouth), atol=1e-6)
    with pytest.raises(ValueError, match="painted mouths"):
        g(b.source, b.grid, b.smap, b.tmap, b.ident)


def test_the_residual_penalty_shrinks_what_the_fusion_net_changes(sampler) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    batch = sampler.sample(2)

    def residual(nets) -> float:  # type: ignore[no-untyped-def]
        with torch.no_grad():
            out = nets.generator(batch.source, batch.grid, batch.smap, batch.tmap, batch.ident)
        return float((out.fused - out.base).abs().mean())

    sizes = {}
    for w in (0.0, 20.0):
        torch.manual_seed(0)
        nets = tiny_nets("joint")
        assert nets.generator.fusion is not None
        torch.nn.init.normal_(nets.generator.fusion.head.weight, std=0.02)
        cfg = TrainConfig(stage="joint", batch=2, lr=1e-3, w_gan=0, w_fm=0, w_residual=w)
        trainer = Trainer(cfg, nets, torch.device("cpu"))
        start = residual(nets)
        logs = [trainer.step(batch) for _ in range(8)]
        assert ("residual" in logs[-1]) == (w > 0)
        sizes[w] = residual(nets) / start
    assert sizes[20.0] < 0.7 * sizes[0.0], sizes


def test_enhancer_steps_lower_the_loss(sampler) -> None:  # type: ignore[no-untyped-def]
    """From a perturbed head (the output is off), a few steps bring the 512² result back
    towards the real frames."""
    torch.manual_seed(0)
    cfg = TrainConfig(stage="enhancer", batch=1, lr=2e-3, perceptual_scales=(0.25,))
    nets = tiny_nets("enhancer")
    assert nets.enhancer is not None
    torch.nn.init.normal_(nets.enhancer.head.weight, std=0.05)
    trainer = Trainer(cfg, nets, torch.device("cpu"))
    losses = []
    for _ in range(8):
        sampler.rng = np.random.default_rng(5)  # the same runs: an overfitting check
        losses.append(enhancer_step(trainer, sampler)["total"])
    assert losses[-1] < 0.8 * losses[0], losses


def test_snapshots_kept_between_saves_and_progress_shows_interval_means(
    clip, sampler, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(stage="warp", steps=4, batch=1, log_every=2, save_every=100, keep_every=2)
    with caplog.at_level("INFO", logger="engine.training.trainer"):
        run(cfg, [clip], dict(sampler.idents), tmp_path, device="cpu")
    # --keep-every is honoured on its own, not only where a regular save falls.
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["000002", "000004"]
    lines = [r.getMessage() for r in caplog.records if "warp step" in r.getMessage()]
    assert [line.split()[2] for line in lines] == ["2/4", "4/4"]
    # A term present on only some steps is averaged over those steps; the others over all.
    meter = LossMeter()
    meter.add({"l1": 1.0, "identity": 0.5})
    meter.add({"l1": 3.0})
    assert meter.take() == {"l1": 2.0, "identity": 0.5}
    assert meter.take() == {}


def test_checkpoint_resume(sampler, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(stage="joint", batch=1, gan_start=0, w_identity=0.0, keep_every=3)
    torch.manual_seed(0)
    trainer = Trainer(cfg, tiny_nets("joint"), torch.device("cpu"))
    for _ in range(3):
        trainer.step(sampler.sample(1))
    trainer.save(tmp_path, {"note": "test"})
    meta = json.loads((tmp_path / "train.json").read_text())
    assert meta["step"] == 3 and meta["train"]["stage"] == "joint"
    assert {p.name for p in tmp_path.iterdir()} >= {"warp", "fusion", "disc", "trainer.pt"}
    # Every keep_every-th step's networks are kept for averaging.
    snap = tmp_path / "snapshots" / "000003"
    assert (snap / "warp" / "model.safetensors").is_file() and (snap / "fusion").is_dir()
    torch.manual_seed(1)  # different fresh weights: resume must replace them
    again = Trainer(cfg, tiny_nets("joint"), torch.device("cpu"))
    from engine.models.fusion import FusionConfig, FusionNet
    from engine.models.store import load_model

    again.nets.generator.fusion.load_state_dict(  # type: ignore[union-attr]
        load_model(FusionNet, FusionConfig, tmp_path / "fusion").state_dict()
    )
    again.resume(tmp_path)
    assert again.step_count == 3
    assert parameter_digest(again.nets.generator.fusion) == pytest.approx(  # type: ignore[arg-type]
        parameter_digest(trainer.nets.generator.fusion)  # type: ignore[arg-type]
    )
    # Optimizer state came back too (Adam's step counters).
    assert again.opt.state_dict()["state"] and again.d_opt is not None


@pytest.mark.slow
def test_ddp_two_processes_stay_in_sync(tmp_path: Path) -> None:
    """torchrun starts 2 gloo processes; each draws different pairs, yet after the steps their
    weights are identical (gradients were averaged) and differ from the start."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free port on localhost, picked by torchrun
        "--nproc_per_node=2",
        str(REPO / "tests" / "engine" / "ddp_worker.py"),
        str(tmp_path),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert reports[0]["world"] == reports[1]["world"] == 2
    assert reports[0]["batch_digest"] != reports[1]["batch_digest"]  # different data per rank
    assert reports[0]["after"] == pytest.approx(reports[1]["after"], rel=1e-9)
    assert reports[0]["after"] != pytest.approx(reports[0]["before"], rel=1e-6)


def test_identity_loss_keeps_the_sources_identity(sampler) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from engine.training.objectives import IdentityLoss

    b = sampler.sample(2)
    assert b.source_points is not None and b.source_points.shape == (2, 478, 3)
    keep = IdentityLoss(torch.device("cpu"))  # reference: the source
    match = IdentityLoss(torch.device("cpu"), "driving")
    # The source itself, seen where the source is, has the source's identity exactly ...
    at_source = replace(b, target_points=b.source_points)
    assert float(keep(b.source, at_source)) < 1e-4
    # ... and the real driving frame has the driving frame's.
    assert float(match(b.driving, b)) < 1e-4
    # A face that is not the person's is far from both references.
    noise = torch.rand_like(b.source)
    assert float(keep(noise, b)) > 0.05 and float(match(noise, b)) > 0.05
    with pytest.raises(ValueError, match="reference"):
        IdentityLoss(torch.device("cpu"), "portrait")
