"""Scale the ID-fusion network's residual: out = warped + s * residual, exactly.

The fusion net adds its residual through one convolution (its `head`, then a pixel shuffle),
so multiplying that convolution's weights and bias by s scales the residual and nothing else.
Shrinking an over-confident residual trades a little of what it adds for less of what it
changes (model card, "Residual scale"). The warp net is copied unchanged, so the output folder
is a whole tier for `--models` or `assets/models/<tier>/`.

    python -m engine.tools.scale_residual --scale 0.5 --out runs/cpu_half assets/models/cpu
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import torch

from engine.errors import ConfigError
from engine.models.fusion import FusionConfig, FusionNet
from engine.models.store import load_model, read_config, save_model

log = logging.getLogger(__name__)


def scale_fusion(net: FusionNet, scale: float) -> None:
    """Multiply the residual `net` adds by `scale` (in place)."""
    if not 0.0 <= scale <= 1.0:
        raise ConfigError(f"residual scale must be within 0..1, got {scale}")
    with torch.no_grad():
        net.head.weight.mul_(scale)
        if net.head.bias is not None:
            net.head.bias.mul_(scale)


def scale_folder(src: Path, out: Path, scale: float) -> None:
    """src/{warp,fusion} -> out/{warp (copied), fusion (residual scaled)}."""
    if not (src / "fusion" / "config.json").is_file():
        raise ConfigError(f"no fusion network in {src}")
    net = load_model(FusionNet, FusionConfig, src / "fusion")
    scale_fusion(net, scale)
    meta = dict(read_config(src / "fusion").get("meta", {}))
    meta["residual_scale"] = float(meta.get("residual_scale", 1.0)) * scale
    meta["scaled_from"] = str(src)
    save_model(net, out / "fusion", meta)
    if (src / "warp").is_dir():
        shutil.copytree(src / "warp", out / "warp", dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scale", type=float, required=True, help="residual factor, 0..1")
    p.add_argument("--out", required=True, help="folder for the scaled networks")
    p.add_argument("src", help="folder with warp/ and fusion/")
    args = p.parse_args(argv)
    scale_folder(Path(args.src), Path(args.out), args.scale)
    log.info("fusion residual x%s: %s -> %s", args.scale, args.src, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
