"""The networks' run-time renderer: dtypes and ownership of its compiled graphs (on CPU; the
same checks on CUDA are in tests/engine/gpu)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import EngineConfig
from engine.geometry.paste import clip_region
from engine.motion.rotation import exp_rotation
from engine.paths import portraits_dir
from engine.portrait import prepare_portrait
from engine.runtime.neural import NeuralRenderer, untrained_models
from engine.runtime.pipeline import Pipeline
from engine.types import Controls, Motion


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # CPU float16 NaNs
def test_float16_renderer_beside_a_float32_one_of_the_same_models() -> None:
    """A float16 renderer casts every input to its graphs' dtype and leaves the networks of a
    float32 renderer of the same models alone. (Its accuracy is checked on CUDA in
    tests/engine/gpu: torch's CPU grid_sample returns NaN in float16 and bfloat16.)"""
    portrait = prepare_portrait(portraits_dir() / "grace_hopper.jpg", output_size=(512, 512))
    cfg = EngineConfig(mouth_fill=False)
    torch.manual_seed(0)
    models = untrained_models("cpu")
    for net in (models.warp, models.fusion):  # non-zero heads: the networks change the image
        torch.nn.init.normal_(net.head.weight, std=1e-3)
    motion = Motion(
        rotation=exp_rotation(np.array([0.1, 0.25, 0.05])),
        translation=np.array([0.03, 0.0, 0.0]),
        scale_ratio=1.0,
        expression=np.zeros((478, 3), np.float32),
        presence=1.0,
    )
    full = Pipeline(portrait, cfg, neural=models, device="cpu", backend="eager")
    before = full.render_motion(motion, Controls()).image
    half = Pipeline(portrait, cfg)
    box = portrait.box
    region = clip_region(box.x0, box.y0, box.size, *portrait.image.shape[1::-1])
    half.neural = NeuralRenderer(portrait, models, region, "cpu", "eager", half=True)
    assert full.neural is not None
    assert (full.neural.dtype, half.neural.dtype) == (torch.float32, torch.float16)
    assert next(models.warp.parameters()).dtype == torch.float32  # the caller's copy untouched
    out = half.render_motion(motion, Controls()).image  # float16 inputs reach the graphs
    assert out.shape == before.shape and out.dtype == np.uint8
    after = full.render_motion(motion, Controls()).image
    np.testing.assert_array_equal(after, before)
    geometric = Pipeline(portrait, cfg).render_motion(motion, Controls()).image
    assert np.abs(before.astype(int) - geometric).max() > 2  # the networks did change the image


def test_a_painted_mouth_fusion_net_is_given_the_warp_with_the_mouth_painted() -> None:
    """Weights trained over the painted mouth (FusionConfig.painted_mouth) get the same cavity
    at the networks' resolution, inside the target's opening only; an untrained one still
    renders the geometric path (painted at full resolution) exactly."""
    from dataclasses import replace

    from engine.geometry.crop import to_crop
    from engine.geometry.mouth import arc_positions
    from engine.landmarks.topology import load_topology
    from engine.models.fusion import FusionNet
    from engine.models.tiers import CROP
    from engine.runtime.neural import NeuralModels

    portrait = prepare_portrait(portraits_dir() / "grace_hopper.jpg", output_size=(512, 512))
    plain = untrained_models("cpu")
    fusion = FusionNet(replace(plain.fusion.config, painted_mouth=True))
    models = NeuralModels("cpu", plain.warp, fusion, None, None)
    box = portrait.box
    region = clip_region(box.x0, box.y0, box.size, *portrait.image.shape[1::-1])
    renderer = NeuralRenderer(portrait, models, region, "cpu", "eager")
    points = to_crop(portrait.landmarks.points.astype(np.float64), box, CROP)
    warped = torch.full((1, 3, CROP, CROP), 0.8)
    assert torch.equal(renderer._paint_mouth(warped, points), warped)  # nothing revealed
    inner = load_topology().lips_inner
    target = points.copy()
    target[inner[arc_positions()[1]], 1] += 14  # the jaw drops: the mouth opens
    painted = renderer._paint_mouth(warped, target)
    changed = (painted - warped).abs().amax(dim=1)[0] > 1e-3
    ys, xs = torch.nonzero(changed, as_tuple=True)
    loop = target[inner, :2]
    assert len(xs) > 30 and float(painted.mean(dim=1)[0][changed].mean()) < 0.5  # dark inside
    assert xs.min() >= loop[:, 0].min() - 2 and xs.max() <= loop[:, 0].max() + 2
    assert ys.min() >= loop[:, 1].min() - 2 and ys.max() <= loop[:, 1].max() + 2

    motion = Motion(
        rotation=exp_rotation(np.array([0.05, 0.2, 0.0])),
        translation=np.zeros(3),
        scale_ratio=1.0,
        expression=np.zeros((478, 3), np.float32),
        presence=1.0,
    )
    nets = Pipeline(portrait, neural=models, device="cpu", backend="eager")
    geometric = Pipeline(portrait).render_motion(motion, Controls()).image
    out = nets.render_motion(motion, Controls()).image
    assert np.abs(out.astype(int) - geometric).max() <= 1
