"""Weight averaging of a run's snapshots (engine.tools.average_weights)."""

from __future__ import annotations

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
