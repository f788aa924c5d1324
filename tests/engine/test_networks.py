"""The networks (warp, ID-fusion, enhancer) on tiny configs, their stages compiled, and the whole
neural path: untrained, every network is the identity, so the nets reproduce the geometric path.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch._dynamo
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch._dynamo.utils import counters

from engine.config import EngineConfig
from engine.device import probe_device
from engine.errors import ConfigError
from engine.geometry.drawing import MAP_CHANNELS
from engine.landmarks.topology import load_topology
from engine.models.blocks import identity_grid, warp
from engine.models.enhancer import Enhancer, EnhancerConfig
from engine.models.fusion import FusionConfig, FusionNet
from engine.models.store import CONFIG, WEIGHTS, load_model, save_model
from engine.models.warp import WarpConfig, WarpNet
from engine.motion.decompose import MotionEstimator
from engine.motion.rotation import exp_rotation
from engine.portrait import Portrait, prepare_portrait
from engine.runtime.compile import compile_graph
from engine.runtime.neural import EnhanceStage, FusionStage, WarpStage, untrained_models
from engine.runtime.pipeline import Pipeline
from engine.runtime.temporal import TemporalBuffer
from engine.types import Controls, Frame, Motion

S = 64  # crop side of the unit tests (the shipped tiers use 256)
WARP = WarpConfig(size=64, channels=(4, 8, 8), code_dim=8, blocks=1)
FUSION = FusionConfig(size=S, channels=(4, 8, 8), hidden=4)
ENHANCER = EnhancerConfig(history=1, channels=4, blocks=1)

needs_compile = pytest.mark.skipif(
    "torch.compile" not in probe_device().backends, reason="torch.compile unusable here (no gcc)"
)

Tensors = tuple[torch.Tensor, ...]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny convolutions: one thread is fastest, and 2+ threads on a busy machine are ~100x
    slower (each parallel region waits for a preempted thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- inputs and helpers ---------------------------------------------------------------------------
def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _grid(b: int, s: int, g: torch.Generator) -> torch.Tensor:
    """A plausible backward flow: the identity grid plus a small random displacement."""
    return identity_grid(s, b, torch.device("cpu"), torch.float32) + 0.05 * torch.randn(
        b, s, s, 2, generator=g
    )


def _warp_inputs(b: int = 2, seed: int = 0, s: int = S) -> Tensors:
    """source, warped, tmap, smap, grid."""
    g = _gen(seed)
    source = torch.rand(b, 3, s, s, generator=g)
    grid = _grid(b, s, g)
    tmap = torch.rand(b, MAP_CHANNELS, s, s, generator=g)
    smap = torch.rand(b, MAP_CHANNELS, s, s, generator=g)
    return source, warp(source, grid), tmap, smap, grid


def _fusion_inputs(b: int = 2, seed: int = 0) -> Tensors:
    """source, warped, grid, visibility, tmap, ident."""
    g = _gen(seed)
    source = torch.rand(b, 3, S, S, generator=g)
    grid = _grid(b, S, g)
    vis = torch.rand(b, 1, S, S, generator=g)
    tmap = torch.rand(b, MAP_CHANNELS, S, S, generator=g)
    ident = F.normalize(torch.randn(b, FUSION.id_dim, generator=g), dim=1)
    return source, warp(source, grid), grid, vis, tmap, ident


def _enhancer_inputs(b: int = 2, seed: int = 0, k: int = ENHANCER.history) -> Tensors:
    """image, warped, warped_hr, history."""
    g = _gen(seed)
    image = torch.rand(b, 3, S, S, generator=g)
    warped = torch.rand(b, 3, S, S, generator=g)
    warped_hr = torch.rand(b, 3, 2 * S, 2 * S, generator=g)
    history = torch.rand(b, 3 * k, 2 * S, 2 * S, generator=g)
    return image, warped, warped_hr, history


def _nets(seed: int = 0) -> tuple[WarpNet, FusionNet, Enhancer]:
    torch.manual_seed(seed)
    return WarpNet(WARP), FusionNet(FUSION), Enhancer(ENHANCER)


def _randomize_head(net: nn.Module, seed: int = 1) -> nn.Module:
    """Give the zero-initialized head small random weights: a 'trained' network."""
    head = net.head
    assert isinstance(head, nn.Conv2d)
    g = _gen(seed)
    with torch.no_grad():
        head.weight.copy_(0.05 * torch.randn(head.weight.shape, generator=g))
        assert head.bias is not None
        head.bias.copy_(0.05 * torch.randn(head.bias.shape, generator=g))
    return net


def _run_fusion(net: FusionNet, inputs: Tensors) -> torch.Tensor:
    source, warped, grid, vis, tmap, ident = inputs
    return net(net.encode_source(source), warped, grid, vis, tmap, ident)


def _outputs(name: str, net: nn.Module, inputs: Tensors) -> Tensors:
    """Every output of one network as a tuple."""
    if name == "fusion":
        assert isinstance(net, FusionNet)
        return (_run_fusion(net, inputs),)
    out = net(*inputs)
    return tuple(out) if isinstance(out, tuple) else (out,)


NETS: dict[str, tuple[type[nn.Module], object, Callable[..., Tensors]]] = {
    "warp": (WarpNet, WARP, _warp_inputs),
    "fusion": (FusionNet, FUSION, _fusion_inputs),
    "enhancer": (Enhancer, ENHANCER, _enhancer_inputs),
}


def _make(name: str, seed: int = 0) -> nn.Module:
    cls, config, _ = NETS[name]
    torch.manual_seed(seed)
    return cls(config)


# -- 1. shapes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("b", "s"), [(2, S), (1, 2 * S), (0, S)])
def test_warp_net_shapes(b: int, s: int) -> None:
    """Any crop side works (the net resizes to its working size); an empty batch too."""
    net = WarpNet(WARP).eval()
    with torch.no_grad():
        grid, vis = net(*_warp_inputs(b, s=s))
    assert grid.shape == (b, s, s, 2)
    assert vis.shape == (b, 1, s, s)
    assert bool(((vis > 0) & (vis < 1)).all())


@pytest.mark.parametrize("b", [2, 0])
def test_fusion_net_shapes(b: int) -> None:
    net = FusionNet(FUSION).eval()
    source, warped, grid, vis, tmap, ident = _fusion_inputs(b)
    with torch.no_grad():
        feats = net.encode_source(source)
        c1, c2, c3 = FUSION.channels
        assert [f.shape for f in feats] == [
            (b, c1, S // 2, S // 2),
            (b, c2, S // 4, S // 4),
            (b, c3, S // 8, S // 8),
        ]
        assert net(feats, warped, grid, vis, tmap, ident).shape == (b, 3, S, S)


@pytest.mark.parametrize("b", [2, 0])
@pytest.mark.parametrize("k", [ENHANCER.history, 0])
def test_enhancer_shapes(b: int, k: int) -> None:
    net = Enhancer(dataclasses.replace(ENHANCER, history=k)).eval()
    with torch.no_grad():
        assert net(*_enhancer_inputs(b, k=k)).shape == (b, 3, 2 * S, 2 * S)


# -- 2. bad input ---------------------------------------------------------------------------------
def _with(inputs: Tensors, i: int, value: torch.Tensor) -> Tensors:
    return (*inputs[:i], value, *inputs[i + 1 :])


def test_warp_net_rejects_bad_inputs() -> None:
    net = WarpNet(WARP)
    inputs = _warp_inputs(2)
    cases = [
        (0, torch.rand(2, 4, S, S), r"WarpNet source must have shape \(\*, 3, \*, \*\)"),
        (0, torch.rand(2, 3, S, S // 2), "WarpNet source must have shape"),
        (1, torch.rand(1, 3, S, S), r"WarpNet warped must have shape \(2, 3, 64, 64\)"),
        (2, torch.rand(2, 3, S, S), r"WarpNet tmap must have shape \(2, 5, 64, 64\)"),
        (3, torch.rand(2, MAP_CHANNELS, 32, 32), "WarpNet smap must have shape"),
        (4, torch.rand(2, S, S, 3), r"WarpNet grid must have shape \(2, 64, 64, 2\), got"),
    ]
    for i, bad, message in cases:
        with pytest.raises(ValueError, match=message):
            net(*_with(inputs, i, bad))


def test_fusion_net_rejects_bad_inputs() -> None:
    net = FusionNet(FUSION)
    source, warped, grid, vis, tmap, ident = _fusion_inputs(2)
    feats = net.encode_source(source)
    with pytest.raises(ValueError, match=r"FusionNet source must have shape \(\*, 3, \*, \*\)"):
        net.encode_source(torch.rand(2, 1, S, S))
    with pytest.raises(ValueError, match="multiple of 8, got 60"):
        net.encode_source(torch.rand(2, 3, 60, 60))
    args = (feats, warped, grid, vis, tmap, ident)
    cases = [
        (1, torch.rand(2, 4, S, S), "FusionNet warped must have shape"),
        (0, feats[:2], "FusionNet needs 3 feature maps"),
        (0, (feats[0], feats[1], feats[1]), r"FusionNet feats\[2\] must have shape \(2, 8, 8, 8\)"),
        (2, grid[:1], r"FusionNet grid must have shape \(2, 64, 64, 2\)"),
        (3, torch.rand(2, 2, S, S), "FusionNet visibility must have shape"),
        (4, torch.rand(2, 3, S, S), r"FusionNet tmap must have shape \(2, 5, 64, 64\)"),
        (5, torch.rand(2, 64), r"FusionNet ident must have shape \(2, 128\), got \(2, 64\)"),
    ]
    for i, bad, message in cases:
        with pytest.raises(ValueError, match=message):
            net(*args[:i], bad, *args[i + 1 :])


def test_enhancer_rejects_bad_inputs() -> None:
    net = Enhancer(ENHANCER)
    inputs = _enhancer_inputs(2)
    cases = [
        (3, torch.rand(2, 6, 2 * S, 2 * S), "history must have 3 channels, got 6"),
        (3, torch.rand(2, 3, S, S), "Enhancer history must have shape"),
        (0, torch.rand(2, 4, S, S), r"Enhancer image must have shape \(\*, 3, \*, \*\)"),
        (1, torch.rand(2, 3, S // 2, S // 2), "Enhancer warped must have shape"),
        (2, torch.rand(2, 3, S, S), r"Enhancer warped_hr must have shape \(2, 3, 128, 128\)"),
    ]
    for i, bad, message in cases:
        with pytest.raises(ValueError, match=message):
            net(*_with(inputs, i, bad))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WarpConfig(size=48), "power of 2 >= 64, got 48"),
        (lambda: WarpConfig(size=96), "power of 2 >= 64, got 96"),
        (lambda: WarpConfig(channels=(4, 8)), "3 positive ints"),  # type: ignore[arg-type]
        (lambda: WarpConfig(channels=(4, 0, 8)), "3 positive ints"),
        (lambda: FusionConfig(channels=(1, 2)), "3 positive ints"),  # type: ignore[arg-type]
        (lambda: FusionConfig(size=60), "multiple of 8 >= 64, got 60"),
        (lambda: FusionConfig(size=56), "multiple of 8 >= 64, got 56"),
        (lambda: EnhancerConfig(history=9), r"within \[0, 8\], got 9"),
        (lambda: EnhancerConfig(history=-1), r"within \[0, 8\], got -1"),
        (lambda: EnhancerConfig(channels=0), "channels must be >= 1"),
        (lambda: EnhancerConfig(blocks=-1), "blocks >= 0"),
    ],
)
def test_invalid_configs_raise(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


# -- 3. zero-init equivalence ---------------------------------------------------------------------
def test_untrained_warp_net_keeps_the_geometric_flow() -> None:
    net = WarpNet(WARP).eval()
    inputs = _warp_inputs(2)
    with torch.no_grad():
        grid, vis = net(*inputs)
    assert torch.equal(grid, inputs[4])
    assert float(vis.min()) > 0.97


def test_untrained_fusion_net_returns_the_warped_portrait() -> None:
    net = FusionNet(FUSION).eval()
    inputs = _fusion_inputs(2)
    with torch.no_grad():
        assert torch.equal(_run_fusion(net, inputs), inputs[1])


def test_untrained_enhancer_is_the_sharp_warp_plus_the_upsampled_change() -> None:
    net = Enhancer(ENHANCER).eval()
    image, warped, warped_hr, history = _enhancer_inputs(2)
    expected = warped_hr + F.interpolate(
        image - warped, scale_factor=2.0, mode="bicubic", align_corners=False
    )
    with torch.no_grad():
        assert torch.equal(net(image, warped, warped_hr, history), expected)
        # Nothing changed at 256²: the output is the 512² warp itself.
        assert torch.equal(net(warped, warped, warped_hr, history), warped_hr)


# -- 4. gradient flow ------------------------------------------------------------------------------
def _loss(outputs: Tensors, seed: int) -> torch.Tensor:
    g = _gen(seed)
    return sum(((o - torch.rand(o.shape, generator=g)) ** 2).mean() for o in outputs)  # type: ignore[return-value]


def _grads(net: nn.Module) -> dict[str, torch.Tensor]:
    grads = {}
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert bool(torch.isfinite(p.grad).all()), f"{name} has a non-finite gradient"
        grads[name] = p.grad
    return grads


@pytest.mark.parametrize("name", list(NETS))
def test_gradients_reach_every_parameter(name: str) -> None:
    net = _make(name).train()
    inputs = NETS[name][2](2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    _loss(_outputs(name, net, inputs), seed=7).backward()
    grads = _grads(net)
    assert all(bool(g.any()) for k, g in grads.items() if k.startswith("head.")), "head"
    # The zero head blocks everything behind it on the first step...
    assert not any(bool(g.any()) for k, g in grads.items() if not k.startswith("head."))

    opt.step()  # ...one step makes the head non-zero, and then every layer learns.
    opt.zero_grad()
    _loss(_outputs(name, net, inputs), seed=7).backward()
    dead = [k for k, g in _grads(net).items() if not bool(g.any())]
    assert not dead, f"parameters with an all-zero gradient: {dead}"


# -- 5. save / load -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(NETS))
def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    cls, config, make_inputs = NETS[name]
    net = _randomize_head(_make(name)).eval()
    folder = save_model(net, tmp_path / name, extra={"step": 3})
    loaded = load_model(cls, type(config), folder)
    assert isinstance(loaded, cls) and not loaded.training
    assert loaded.config == config
    assert json.loads((folder / CONFIG).read_text())["meta"] == {"step": 3}
    inputs = make_inputs(2, seed=5)
    with torch.no_grad():
        for a, b in zip(_outputs(name, net, inputs), _outputs(name, loaded, inputs), strict=True):
            assert torch.equal(a, b)


def test_load_rejects_another_class_and_missing_weights(tmp_path: Path) -> None:
    folder = save_model(WarpNet(WARP), tmp_path / "warp")
    with pytest.raises(ConfigError, match="holds a WarpNet, not a FusionNet"):
        load_model(FusionNet, FusionConfig, folder)

    state = load_file(str(folder / WEIGHTS))
    del state["head.bias"]
    save_file(state, str(folder / WEIGHTS))
    with pytest.raises(ConfigError, match=r"(?s)does not match WarpNet.*head\.bias"):
        load_model(WarpNet, WarpConfig, folder)

    data = json.loads((folder / CONFIG).read_text())
    data["config"]["depth"] = 3
    (folder / CONFIG).write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"unknown settings \['depth'\]"):
        load_model(WarpNet, WarpConfig, folder)


# -- 6. compiled stages ---------------------------------------------------------------------------
def _warp_stage(seed: int) -> Tensors:
    source, _, tmap, smap, grid = _warp_inputs(1, seed)
    return source, smap, tmap, grid


def _fusion_stage_inputs(net: FusionNet) -> Callable[[int], Tensors]:
    def make(seed: int) -> Tensors:
        source, warped, grid, vis, tmap, ident = _fusion_inputs(1, seed)
        with torch.no_grad():
            feats = net.encode_source(source)
        return (*feats, warped, grid, vis, tmap, ident)

    return make


def _enhance_stage(seed: int) -> Tensors:
    image, warped, source_hr, history = _enhancer_inputs(1, seed)
    return image, warped, source_hr, _grid(1, S, _gen(seed + 100)), history


def _stage(name: str) -> tuple[nn.Module, Callable[[int], Tensors]]:
    warp_net, fusion, enhancer = (_randomize_head(n) for n in _nets())
    if name == "warp":
        return WarpStage(warp_net), _warp_stage  # type: ignore[arg-type]
    if name == "fusion":
        return FusionStage(fusion), _fusion_stage_inputs(fusion)  # type: ignore[arg-type]
    return EnhanceStage(enhancer), _enhance_stage  # type: ignore[arg-type]


@pytest.fixture
def fresh_dynamo() -> Iterator[None]:
    """Each test sees its own compilations only (the on-disk inductor cache stays warm)."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


@needs_compile
@pytest.mark.slow
@pytest.mark.parametrize("name", ["warp", "fusion", "enhance"])
def test_compiled_stage_matches_eager_without_recompiling(name: str, fresh_dynamo: None) -> None:
    stage, make_inputs = _stage(name)
    examples = make_inputs(0)
    eager = compile_graph(stage, examples, backend="eager")
    compiled = compile_graph(stage, examples, backend="torch.compile")
    assert compiled.report.backend == "torch.compile"
    assert int(counters["stats"]["unique_graphs"]) == 1  # fullgraph: one graph, no breaks
    with torch._dynamo.config.patch(error_on_recompile=True):
        for seed in (1, 2, 3):
            inputs = make_inputs(seed)
            for got, want in zip(compiled(*inputs), eager(*inputs), strict=True):
                torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    assert int(counters["stats"]["unique_graphs"]) == 1


# -- 7. temporal buffer ---------------------------------------------------------------------------
def _frame(value: float) -> torch.Tensor:
    return torch.full((1, 3, 4, 4), value)


def test_temporal_buffer_keeps_the_newest_first() -> None:
    buf = TemporalBuffer(2)
    assert buf.empty
    like = torch.rand(1, 3, 4, 4)
    assert torch.equal(buf.tensor(like), torch.cat([like, like], dim=1))  # repeated k times
    a = _frame(1.0)
    buf.push(a)
    assert not buf.empty
    assert torch.equal(buf.tensor(like), torch.cat([a, a], dim=1))  # the first push fills all
    a.fill_(9.0)  # the buffer holds its own copy
    assert torch.equal(buf.tensor(like), torch.cat([_frame(1.0), _frame(1.0)], dim=1))
    buf.push(_frame(2.0))
    assert torch.equal(buf.tensor(like), torch.cat([_frame(2.0), _frame(1.0)], dim=1))
    buf.push(_frame(3.0))  # the oldest (1) drops out
    assert torch.equal(buf.tensor(like), torch.cat([_frame(3.0), _frame(2.0)], dim=1))
    buf.reset()
    assert buf.empty
    assert torch.equal(buf.tensor(like), torch.cat([like, like], dim=1))


def test_temporal_buffer_without_history() -> None:
    buf = TemporalBuffer(0)
    like = torch.rand(1, 3, 4, 4)
    assert buf.tensor(like).shape == (1, 0, 4, 4)
    buf.push(_frame(1.0))
    assert buf.tensor(like).shape == (1, 0, 4, 4)
    buf.reset()
    assert buf.tensor(like).shape == (1, 0, 4, 4)
    with pytest.raises(ValueError, match="history length must be >= 0, got -1"):
        TemporalBuffer(-1)


# -- 8. the whole neural path ---------------------------------------------------------------------
NO_FILL = EngineConfig(mouth_fill=False)


@pytest.fixture(scope="module")
def grace(portraits_dir: Path) -> Portrait:
    return prepare_portrait(portraits_dir / "grace_hopper.jpg", output_size=(256, 256))


@pytest.fixture(scope="module")
def geometric(grace: Portrait) -> Iterator[Pipeline]:
    pipeline = Pipeline(grace, NO_FILL)
    yield pipeline
    pipeline.close()


@pytest.fixture(scope="module")
def motion(geometric: Pipeline, sample_frames: list[Frame]) -> Motion:
    """The sample driver's widest mouth opening against its first frame, plus a head turn."""
    tracked = [lm for lm in (geometric.track(f, 0.0) for f in sample_frames) if lm is not None]
    assert len(tracked) > 40
    gap = [float(np.linalg.norm(lm.points[13, :2] - lm.points[14, :2])) for lm in tracked]
    estimator = MotionEstimator(load_topology())
    estimator.set_neutral(tracked[0])
    driven = estimator.estimate(tracked[int(np.argmax(gap))])
    assert max(gap) > 8 * (gap[0] + 1)  # the mouth clearly opens
    turn = exp_rotation(np.array([0.1, 0.3, 0.05]))  # ~19 degrees, mostly yaw
    return dataclasses.replace(driven, rotation=turn @ driven.rotation)


@pytest.mark.parametrize("tier", ["cpu", "gpu"])
def test_untrained_networks_render_the_geometric_image(
    tier: str, grace: Portrait, geometric: Pipeline, motion: Motion, sample_frames: list[Frame]
) -> None:
    expected = geometric.render_motion(motion, Controls())
    moved = np.abs(expected.image.astype(int) - grace.image.astype(int))
    assert (moved > 20).sum() > 5000  # the motion is far from the still portrait

    models = untrained_models(tier)
    assert (models.enhancer is not None) == (tier == "gpu")
    neural = Pipeline(grace, NO_FILL, neural=models, backend="eager")
    try:
        got = neural.render_motion(motion, Controls())
        assert np.abs(got.image.astype(int) - expected.image.astype(int)).max() <= 1
        np.testing.assert_allclose(got.target, expected.target)
        assert got.warp_net_ms > 0 and got.fusion_ms > 0
        assert (got.enhance_ms > 0) == (tier == "gpu")
        # A tracked frame (the enhancer now has a history): the stage times reach StageTimings.
        timings = neural.process(sample_frames[0], Controls()).timings
        assert timings.warp_net_ms > 0 and timings.fusion_ms > 0
        if tier == "gpu":
            assert timings.enhance_ms > 0
        else:
            assert timings.enhance_ms == 0.0
    finally:
        neural.close()

    timings = geometric.process(sample_frames[1], Controls()).timings
    assert (timings.warp_net_ms, timings.fusion_ms, timings.enhance_ms) == (0.0, 0.0, 0.0)
