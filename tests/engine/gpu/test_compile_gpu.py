"""compile_graph on a CUDA GPU (opt-in: pytest -m gpu): float16 TensorRT or torch.compile."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.runtime.compile import compile_graph

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

needs_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("torch_tensorrt") is None,
    reason="torch-tensorrt not installed (pip install visage[tensorrt])",
)

# float16 has an 11-bit significand; the outputs below are O(1).
HALF_ATOL = 2e-2


class WarpNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        warped = F.grid_sample(
            image, grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        return self.conv2(torch.relu(self.conv1(warped)))


def _net(seed: int) -> WarpNet:
    torch.manual_seed(seed)
    return WarpNet().eval()


def _inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, 64, 64, generator=g)
    grid = torch.rand(1, 64, 64, 2, generator=g) * 2 - 1
    return image, grid


def _reference(seed: int, image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The eager float32 output on the GPU."""
    net = _net(seed).cuda()
    with torch.no_grad():
        return net(image.cuda(), grid.cuda())


def _half(t: torch.Tensor) -> torch.Tensor:
    return t.to("cuda", torch.float16)


@pytest.mark.parametrize("backend", ["auto", "torch.compile"])
def test_half_output_close_to_float32_eager_and_refit(backend: str, tmp_path: Path) -> None:
    graph = compile_graph(_net(0), _inputs(0), backend=backend, cache_dir=tmp_path)
    assert (graph.report.device, graph.report.dtype) == ("cuda", "float16")
    assert graph.report.fallbacks == (), graph.report.summary()
    image, grid = _inputs(1)
    out = graph(_half(image), _half(grid))
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), _reference(0, image, grid), rtol=0, atol=HALF_ATOL)

    graph.refit(_net(1).state_dict())
    refitted = graph(_half(image), _half(grid)).float()
    assert not torch.allclose(refitted, out.float(), atol=HALF_ATOL)
    torch.testing.assert_close(refitted, _reference(1, image, grid), rtol=0, atol=HALF_ATOL)


@needs_tensorrt
def test_tensorrt_writes_its_engine_cache_and_refits(tmp_path: Path) -> None:
    cache = tmp_path / "engines"
    graph = compile_graph(_net(0), _inputs(0), backend="tensorrt", cache_dir=cache)
    assert graph.report.backend == "tensorrt"
    assert any(p.is_file() for p in cache.rglob("*")), "no engine written to the cache dir"
    image, grid = _inputs(2)
    torch.testing.assert_close(
        graph(_half(image), _half(grid)).float(),
        _reference(0, image, grid),
        rtol=0,
        atol=HALF_ATOL,
    )
    graph.refit(_net(1).state_dict())
    torch.testing.assert_close(
        graph(_half(image), _half(grid)).float(),
        _reference(1, image, grid),
        rtol=0,
        atol=HALF_ATOL,
    )
