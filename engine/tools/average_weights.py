"""Average the weights of several checkpoints of one run (stochastic weight averaging).

The uniform average of the snapshots a run keeps (`visage train --keep-every N` writes them
to out/snapshots/<step>/) is a flatter, better-generalizing solution than any single one of
them (Izmailov et al., 2018). Every network folder must hold the same class and config.

    python -m engine.tools.average_weights --out runs/cpu_swa --from-step 2500 runs/cpu_app
    python -m engine.tools.average_weights --out runs/soup runs/a runs/b   # folders directly
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from torch import nn

from engine.errors import ConfigError
from engine.models.enhancer import Enhancer, EnhancerConfig
from engine.models.fusion import FusionConfig, FusionNet
from engine.models.store import load_model, read_config, save_model
from engine.models.warp import WarpConfig, WarpNet

log = logging.getLogger(__name__)

NETWORKS: dict[str, tuple[type[nn.Module], type]] = {
    "warp": (WarpNet, WarpConfig),
    "fusion": (FusionNet, FusionConfig),
    "enhancer": (Enhancer, EnhancerConfig),
}


def snapshot_folders(run: Path, from_step: int = 0) -> list[Path]:
    """run/snapshots/<step>/ folders at or after `from_step`, in step order."""
    found = [p for p in (run / "snapshots").glob("*") if p.is_dir() and p.name.isdigit()]
    return sorted((p for p in found if int(p.name) >= from_step), key=lambda p: int(p.name))


def average_folders(folders: list[Path], out: Path) -> list[str]:
    """Write the average of each network the folders share into out/<network>/; returns the
    networks written. Raises ConfigError when the folders disagree on a network's config."""
    if not folders:
        raise ConfigError("nothing to average: no checkpoint folders given")
    written = []
    for name, (cls, config_cls) in NETWORKS.items():
        if not (folders[0] / name / "config.json").is_file():
            continue
        configs = [read_config(f / name).get("config") for f in folders]
        if any(c != configs[0] for c in configs):
            raise ConfigError(f"the {name} networks differ in config; they cannot be averaged")
        models = [load_model(cls, config_cls, f / name) for f in folders]
        model, states = models[0], [m.state_dict() for m in models]
        mean = {}
        for key, value in states[0].items():
            if value.is_floating_point():
                mean[key] = torch.stack([s[key].double() for s in states]).mean(0).to(value.dtype)
            else:  # counters and the like: the last snapshot's
                mean[key] = states[-1][key]
        model.load_state_dict(mean, strict=True)
        meta = {"averaged": [str(f) for f in folders]}
        save_model(model, out / name, meta)
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the averaged networks")
    p.add_argument(
        "--from-step",
        type=int,
        help="average RUN/snapshots/<step>/ from this step on (one RUN folder given)",
    )
    p.add_argument("folders", nargs="+", help="checkpoint folders, or one run with --from-step")
    args = p.parse_args(argv)
    folders = [Path(f) for f in args.folders]
    if args.from_step is not None:
        if len(folders) != 1:
            raise SystemExit("--from-step takes exactly one run folder")
        folders = snapshot_folders(folders[0], args.from_step)
    nets = average_folders(folders, Path(args.out))
    log.info("averaged %s over %d checkpoints into %s", ", ".join(nets), len(folders), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
