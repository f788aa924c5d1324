"""Weight averaging of a run's snapshots (engine.tools.average_weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.errors import ConfigError
from engine.models.store import load_model, save_model
from engine.models.warp import WarpConfig, WarpNet
from engine.tools.average_weights import average_folders, main, snapshot_folders
from tests.engine.training_tools import TINY_WARP


def _net(seed: int, config: WarpConfig = TINY_WARP) -> WarpNet:
    torch.manual_seed(seed)
    net = WarpNet(config)
    for p in net.parameters():
        torch.nn.init.normal_(p)
    return net


def test_average_is_the_mean_of_the_snapshots(tmp_path: Path) -> None:
    nets = [_net(s) for s in range(3)]
    for step, net in zip((100, 200, 300), nets, strict=True):
        save_model(net, tmp_path / "run" / "snapshots" / f"{step:06d}" / "warp")
    assert [p.name for p in snapshot_folders(tmp_path / "run", 200)] == ["000200", "000300"]
    assert main(["--out", str(tmp_path / "avg"), "--from-step", "0", str(tmp_path / "run")]) == 0
    avg = load_model(WarpNet, WarpConfig, tmp_path / "avg" / "warp")
    for key, value in avg.state_dict().items():
        expected = torch.stack([n.state_dict()[key] for n in nets]).mean(0)
        torch.testing.assert_close(value, expected)
    # Averaging one checkpoint gives it back.
    assert average_folders([tmp_path / "run" / "snapshots" / "000100"], tmp_path / "one") == [
        "warp"
    ]
    one = load_model(WarpNet, WarpConfig, tmp_path / "one" / "warp").state_dict()
    for key, value in nets[0].state_dict().items():
        torch.testing.assert_close(one[key], value)


def test_average_refuses_mismatched_or_missing_checkpoints(tmp_path: Path) -> None:
    save_model(_net(0), tmp_path / "a" / "warp")
    other = WarpConfig(size=64, channels=(8, 8, 8), code_dim=16, blocks=1)
    save_model(_net(1, other), tmp_path / "b" / "warp")
    with pytest.raises(ConfigError, match="differ in config"):
        average_folders([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    with pytest.raises(ConfigError, match="nothing to average"):
        average_folders([], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_residual_scale_scales_the_fusion_residual_exactly(tmp_path: Path) -> None:
    import torch.nn.functional as F

    from engine.models.fusion import FusionConfig, FusionNet
    from engine.tools.scale_residual import main as scale_main
    from tests.engine.training_tools import TINY_FUSION

    torch.manual_seed(0)
    net = FusionNet(TINY_FUSION)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_model(net, tmp_path / "src" / "fusion", {"note": "kept"})
    save_model(_net(1), tmp_path / "src" / "warp")
    assert (
        scale_main(["--scale", "0.5", "--out", str(tmp_path / "half"), str(tmp_path / "src")]) == 0
    )
    half = load_model(FusionNet, FusionConfig, tmp_path / "half" / "fusion")
    s = TINY_FUSION.size
    source, warped = torch.rand(1, 3, s, s), torch.rand(1, 3, s, s)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
    grid = torch.stack([xs, ys], -1)[None]
    vis, tmap = torch.rand(1, 1, s, s), torch.rand(1, 5, s, s)
    ident = F.normalize(torch.randn(1, TINY_FUSION.id_dim), dim=1)
    with torch.no_grad():
        full = net(net.encode_source(source), warped, grid, vis, tmap, ident) - warped
        got = half(half.encode_source(source), warped, grid, vis, tmap, ident) - warped
    assert full.abs().mean() > 1e-3  # a residual worth scaling
    torch.testing.assert_close(got, 0.5 * full, atol=1e-6, rtol=1e-5)
    meta = json.loads((tmp_path / "half" / "fusion" / "config.json").read_text())["meta"]
    assert meta["residual_scale"] == 0.5 and meta["note"] == "kept"
    assert (tmp_path / "half" / "warp" / "model.safetensors").is_file()
    with pytest.raises(ConfigError, match=r"within 0\.\.1"):
        scale_main(["--scale", "2", "--out", str(tmp_path / "x"), str(tmp_path / "src")])
