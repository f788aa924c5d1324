"""Both network tiers on a CUDA GPU (opt-in: pytest -m gpu): the compiled float16 graphs agree
with eager float32, and the whole pipeline renders. Speed is measured by `visage bench`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import EngineConfig
from engine.evaluation.metrics import psnr
from engine.motion.rotation import exp_rotation
from engine.paths import portraits_dir
from engine.portrait import prepare_portrait
from engine.runtime.neural import untrained_models
from engine.runtime.pipeline import Pipeline
from engine.types import Controls, Motion

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _motion() -> Motion:
    return Motion(
        rotation=exp_rotation(np.array([0.1, 0.25, 0.05])),
        translation=np.array([0.03, 0.0, 0.0]),
        scale_ratio=1.0,
        expression=np.zeros((478, 3), np.float32),
        presence=1.0,
    )


@pytest.mark.parametrize("tier", ["cpu", "gpu"])
def test_compiled_half_matches_eager_float(tier: str) -> None:
    portrait = prepare_portrait(portraits_dir() / "grace_hopper.jpg", output_size=(512, 512))
    cfg = EngineConfig(mouth_fill=False)
    torch.manual_seed(0)
    models = untrained_models(tier)
    for net in (models.warp, models.fusion, models.enhancer):
        if net is not None:  # non-zero heads, so that the networks really change the image
            torch.nn.init.normal_(net.head.weight, std=1e-3)
    eager = Pipeline(portrait, cfg, neural=models, device="cuda", backend="eager")
    fast = Pipeline(portrait, cfg, neural=models, device="cuda", backend="auto")
    a = eager.render_motion(_motion(), Controls()).image
    b = fast.render_motion(_motion(), Controls()).image
    assert fast.neural is not None and "float16" in fast.neural.backend_summary
    assert psnr(a, b) > 40
