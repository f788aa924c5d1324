"""compile_graph on CPU (float32): eager and torch.compile backends, fallbacks, refit, shapes."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import torch
import torch._dynamo
import torch.nn.functional as F
from torch import nn
from torch._dynamo.utils import counters

from engine.device import probe_device
from engine.errors import CompileError, VisageError
from engine.runtime.compile import CompiledGraph, compile_graph, opaque_grid_sample

needs_compile = pytest.mark.skipif(
    "torch.compile" not in probe_device().backends, reason="torch.compile unusable here (no gcc)"
)


class WarpNet(nn.Module):
    """conv(grid_sample(image, grid)): the warp-then-convolve core of the avatar networks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        warped = F.grid_sample(
            image, grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        return self.conv(warped)


class AtenWarpNet(WarpNet):
    """WarpNet asking for ATen's grid_sample under torch.compile on the CPU (as WarpStage does),
    with the call's options given positionally."""

    aten_grid_sample_on_cpu = True

    def forward(self, image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return self.conv(F.grid_sample(image, grid, "bilinear", "border", False))


class BranchyNet(WarpNet):
    """Data-dependent control flow: a graph break, so fullgraph=True cannot compile it."""

    def forward(self, image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        out = super().forward(image, grid)
        if out.mean() > 0:
            return out
        return -out


def _inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, 32, 32, generator=g)
    grid = torch.rand(1, 32, 32, 2, generator=g) * 2.2 - 1.1  # a little outside: border padding
    return image, grid


def _net(kind: type[WarpNet] = WarpNet, seed: int = 0) -> WarpNet:
    torch.manual_seed(seed)
    return kind().eval()


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    """Each test sees its own compilations only (the on-disk inductor cache stays warm)."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _compilations() -> int:
    return int(counters["stats"]["unique_graphs"])


def test_eager_output_equals_module() -> None:
    net = _net()
    graph = compile_graph(net, _inputs(0), backend="eager")
    assert isinstance(graph, CompiledGraph)
    assert graph.report.backend == "eager"
    assert (graph.report.device, graph.report.dtype) == ("cpu", "float32")
    assert graph.report.fallbacks == ()
    for seed in range(3):
        image, grid = _inputs(seed)
        with torch.no_grad():
            expected = net(image, grid)
        assert torch.equal(graph(image, grid), expected)


@needs_compile
@pytest.mark.parametrize("kind", [WarpNet, AtenWarpNet])
def test_torch_compile_matches_eager_and_never_recompiles(kind: type[WarpNet]) -> None:
    net = _net(kind)
    graph = compile_graph(net, _inputs(0), backend="torch.compile")
    assert graph.report.backend == "torch.compile"
    assert graph.report.requested == "torch.compile"
    assert _compilations() == 1  # the warm-up run inside compile_graph compiled it
    frames = [_inputs(seed) for seed in range(1, 6)]
    # Frames made in inference mode (inference tensors) and a non-contiguous view of the same
    # shape must not recompile either: dynamo guards on both, compile_graph copies such inputs.
    with torch.inference_mode():
        image6, grid6 = _inputs(6)
        frames.append((image6.clone(), grid6.clone()))
    image_hwc = _inputs(7)[0].permute(0, 2, 3, 1).contiguous()
    frames.append((image_hwc.permute(0, 3, 1, 2), _inputs(7)[1]))
    with torch._dynamo.config.patch(error_on_recompile=True):
        for image, grid in frames:
            out = graph(image, grid)
            with torch.no_grad():
                expected = net(image, grid)
            torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert _compilations() == 1


@pytest.mark.parametrize("kind", [WarpNet, AtenWarpNet])
def test_opaque_grid_sample_rewrites_each_call_and_keeps_the_result(kind: type[WarpNet]) -> None:
    net = _net(kind)
    gm = torch.fx.symbolic_trace(net)
    assert opaque_grid_sample(gm) == 1
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert torch.ops.visage.grid_sample.default in targets
    assert F.grid_sample not in targets
    image, grid = _inputs(3)
    with torch.no_grad():
        torch.testing.assert_close(gm(image, grid), net(image, grid), rtol=0, atol=0)


@needs_compile
@pytest.mark.parametrize("kind", [WarpNet, AtenWarpNet])
def test_refit_loads_new_weights_without_recompiling(kind: type[WarpNet]) -> None:
    net = _net(kind, seed=0)
    graph = compile_graph(net, _inputs(0), backend="torch.compile")
    image, grid = _inputs(1)
    before = graph(image, grid).clone()
    new_weights = _net(kind, seed=1).state_dict()
    with torch._dynamo.config.patch(error_on_recompile=True):
        graph.refit(new_weights)
        after = graph(image, grid)
    assert _compilations() == 1
    assert not torch.allclose(after, before)
    fresh = _net(kind, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(after, fresh(image, grid), rtol=0, atol=1e-5)


def test_refit_rejects_weights_of_another_network() -> None:
    graph = compile_graph(_net(), _inputs(0), backend="eager")
    weights = _net().state_dict()
    weights["conv.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(CompileError, match=r"conv\.weight"):
        graph.refit(weights)
    del weights["conv.bias"]
    with pytest.raises(CompileError, match=r"missing conv\.bias"):
        graph.refit(weights)


def test_tensorrt_without_cuda_says_why() -> None:
    if probe_device().device == "cuda":
        pytest.skip("CUDA is available here")
    with pytest.raises(CompileError, match="TensorRT needs a CUDA GPU"):
        compile_graph(_net(), _inputs(0), backend="tensorrt")


def test_unknown_backend_raises() -> None:
    with pytest.raises(VisageError, match="unknown compile backend 'onnx'"):
        compile_graph(_net(), _inputs(0), backend="onnx")


@needs_compile
def test_graph_break_falls_back_to_eager_under_auto(caplog: pytest.LogCaptureFixture) -> None:
    net = BranchyNet().eval()
    with caplog.at_level(logging.WARNING, logger="engine.runtime.compile"):
        graph = compile_graph(net, _inputs(0), backend="auto")
    report = graph.report
    assert (report.backend, report.requested) == ("eager", "auto")
    assert len(report.fallbacks) == 1
    assert report.fallbacks[0].startswith("torch.compile failed: ")
    assert "torch.compile failed" in report.summary()
    assert any("torch.compile could not compile BranchyNet" in r.message for r in caplog.records)
    image, grid = _inputs(1)
    with torch.no_grad():
        assert torch.equal(graph(image, grid), net(image, grid))


@needs_compile
def test_graph_break_raises_when_torch_compile_is_requested() -> None:
    with pytest.raises(CompileError, match=r"torch\.compile backend could not compile BranchyNet"):
        compile_graph(BranchyNet().eval(), _inputs(0), backend="torch.compile")


def test_wrong_input_shape_raises() -> None:
    graph = compile_graph(_net(), _inputs(0), backend="eager")
    image, grid = _inputs(0)
    with pytest.raises(ValueError, match=r"compiled for inputs \[\(1, 3, 32, 32\) float32"):
        graph(image[:, :, :16], grid)
    with pytest.raises(ValueError, match=r"got \[\(1, 3, 32, 32\) float64"):
        graph(image.double(), grid)
    with pytest.raises(ValueError, match="compiled for inputs"):
        graph(image)


def test_float32_on_cpu_unless_half_is_asked_for() -> None:
    assert compile_graph(_net(), _inputs(0), backend="eager", device="cpu").report.dtype == (
        "float32"
    )
    graph = compile_graph(_net(), _inputs(0), backend="eager", device="cpu", half=True)
    assert graph.report.dtype == "float16"
    image, grid = (t.half() for t in _inputs(1))
    assert graph(image, grid).dtype == torch.float16
