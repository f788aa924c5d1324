"""`visage train`: cache the clips, then train one stage (also under torchrun)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import VisageError
from engine.paths import cache_dir, faces_folder

if TYPE_CHECKING:
    from engine.models.identity import IdentityEncoder
    from engine.training.clips import ClipData

log = logging.getLogger(__name__)

# Identities kept out of training for validation (visage eval --held-out uses them).
HELD_OUT = frozenset(
    {"amy_klobuchar", "ted_lieu", "lp_d10_woman_makeup", "jackie_chan", "mead_W009"}
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage", choices=("warp", "joint", "enhancer"), default="warp")
    p.add_argument("--tier", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--out", required=True, help="checkpoint folder (resumed when it exists)")
    p.add_argument("--init", help="folder with the previous stage's networks")
    p.add_argument("--videos", help="talking-head clips: videos/<identity>/*.mp4")
    p.add_argument("--cache", help="landmark/crop cache folder")
    p.add_argument("--max-frames", type=int, default=150, help="frames cached per clip")
    p.add_argument("--perceptual", choices=("alex", "vgg16"), default="alex")
    p.add_argument(
        "--perceptual-scales",
        default="1,0.5",
        help="image scales of the perceptual pyramid (0.5,0.25 is 4x cheaper on a CPU)",
    )
    p.add_argument("--w-gan", type=float, default=0.05, help="adversarial loss weight")
    p.add_argument("--w-fm", type=float, default=1.0, help="feature-matching loss weight")
    p.add_argument("--w-identity", type=float, default=0.5, help="identity-cosine loss weight")
    p.add_argument(
        "--identity-reference",
        choices=("source", "driving"),
        default="source",
        help="the identity loss keeps the source's identity, or matches the driving frame's",
    )
    p.add_argument(
        "--w-cross-identity",
        type=float,
        default=0.0,
        help="identity loss on portraits driven by training clips (cross-identity pairs)",
    )
    p.add_argument(
        "--portraits",
        help="portrait images for --w-cross-identity (default: ../shared/data/faces/portraits)",
    )
    p.add_argument("--w-ssim", type=float, default=0.0, help="SSIM loss weight (1 - SSIM)")
    p.add_argument(
        "--w-residual",
        type=float,
        default=0.0,
        help="L1 weight on the ID-fusion residual (it changes the warped portrait only where "
        "that pays for itself in the other losses)",
    )
    p.add_argument(
        "--painted-mouth",
        action="store_true",
        help="train the ID-fusion net over the warp with the app's mouth interior painted in "
        "(saved in its config; weights given by --init are converted)",
    )
    p.add_argument(
        "--warp-lr-factor",
        type=float,
        default=0.1,
        help="joint stage: the warp net's learning rate relative to --lr",
    )
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--device", help="cpu, cuda (default: cuda when available)")
    p.add_argument(
        "--workers",
        type=int,
        help="background processes drawing pairs (default: 0 on CPU, up to 8 on CUDA)",
    )
    p.add_argument(
        "--max-minutes", type=float, default=0.0, help="stop and save after this long (0: never)"
    )
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument(
        "--keep-every",
        type=int,
        default=0,
        help="also keep the networks every N steps in OUT/snapshots/<step>/ (for averaging)",
    )
    m = p.add_argument_group("meta-training (--meta: Reptile from the base weights in --init)")
    m.add_argument("--meta", action="store_true", help="meta-train; --steps counts outer steps")
    m.add_argument("--inner-steps", type=int, default=2, help="inner Adam steps per task")
    m.add_argument("--outer-lr", type=float, default=1e-4, help="outer Adam's learning rate")


def _workers(args: argparse.Namespace) -> int:
    """On CUDA the pairs are drawn in background processes; on CPU they would only compete with
    the training step for the same cores."""
    if args.workers is not None:
        return int(args.workers)
    import torch

    cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    return min(8, max(0, (os.cpu_count() or 1) - 2)) if cuda else 0


def cmd_train(args: argparse.Namespace) -> int:
    from engine.models.identity import load_identity_encoder
    from engine.training.identities import clip_identities

    clips = _training_clips(args)
    encoder = load_identity_encoder()
    idents = clip_identities(clips, encoder)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.meta:
        return _meta(args, clips, idents, out)
    from engine.training.trainer import TrainConfig, run, world

    cfg = TrainConfig(
        tier=args.tier,
        stage=args.stage,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        perceptual=args.perceptual,
        perceptual_scales=_scales(args),
        w_gan=args.w_gan,
        w_fm=args.w_fm,
        w_identity=args.w_identity,
        warp_lr_factor=args.warp_lr_factor,
        w_ssim=args.w_ssim,
        identity_reference=args.identity_reference,
        w_cross_identity=args.w_cross_identity,
        painted_mouth=args.painted_mouth,
        w_residual=args.w_residual,
        log_every=args.log_every,
        save_every=args.save_every,
        keep_every=args.keep_every,
        workers=_workers(args),
        max_minutes=args.max_minutes,
    )
    log.info(
        "training %s/%s on %d clips of %d people",
        cfg.tier,
        cfg.stage,
        len(clips),
        len({c.identity for c in clips}),
    )
    if cfg.stage != "warp" and not args.init and not (out / "warp" / "config.json").is_file():
        log.warning(
            "the %s stage starts from an untrained warp net: pass --init with the previous "
            "stage's folder",
            cfg.stage,
        )
    cross = _cross_sources(args, clips, encoder) if cfg.w_cross_identity else []
    idents.update(clip_identities(cross, encoder))
    last = run(
        cfg,
        clips,
        idents,
        out,
        init=Path(args.init) if args.init else None,
        resume=not args.fresh,
        device=args.device,
        cross=cross,
    )
    if world()[0] == 0:
        log.info("done: %s", " ".join(f"{k} {v:.4f}" for k, v in last.items()))
    return 0


def _scales(args: argparse.Namespace) -> tuple[float, ...]:
    return tuple(float(v) for v in args.perceptual_scales.split(","))


def _cache(args: argparse.Namespace) -> Path:
    """The clip cache folder: --cache, else the user cache's train/."""
    return Path(args.cache) if args.cache else cache_dir() / "train"


def _training_clips(args: argparse.Namespace) -> list[ClipData]:
    """The cached training clips (held-out people excluded); rank 0 builds the cache."""
    from engine.training.clips import cache_clips, load_clip

    videos = faces_folder(args.videos, "videos")
    cache = _cache(args)
    cached = sorted(cache.glob("*.npz")) if cache.is_dir() else []
    if not videos.is_dir() and not cached:
        raise VisageError(f"no training clips at {videos}; pass --videos DIR (DIR/<person>/*.mp4)")

    def build() -> None:
        if videos.is_dir():
            cache_clips(videos, cache, args.max_frames, HELD_OUT)
        else:
            log.info("no clips at %s: training on the %d cached in %s", videos, len(cached), cache)

    _built_by_rank0(cache, build)
    paths = sorted(cache.glob("*.npz"))
    clips = [load_clip(p) for p in paths if p.name.split("__")[0] not in HELD_OUT]
    if not clips:
        raise VisageError(f"no usable clips cached in {cache}")
    return clips


def _cross_sources(
    args: argparse.Namespace, clips: list[ClipData], encoder: IdentityEncoder
) -> list[ClipData]:
    """The training portraits driven by training clips (engine.training.cross), cached under
    CACHE/cross by rank 0, without any portrait that looks like a held-out person."""
    from engine.training.clips import load_clip
    from engine.training.cross import cache_cross, lookalikes, people_descriptors, portrait_split
    from engine.training.identities import clip_identities

    folder = faces_folder(args.portraits, "portraits")
    cache = _cache(args) / "cross"
    split = portrait_split(folder) if folder.is_dir() else None

    def build() -> None:
        if split is not None:
            cache_cross(split.train, clips, cache)

    _built_by_rank0(cache, build)
    cross = [load_clip(p) for p in sorted(cache.glob("*.npz"))]
    # A cache built under an older split may hold validation or test portraits: never train on them.
    train = split.names("train") if split is not None else frozenset()
    cross = [c for c in cross if c.name in train]
    if not cross:
        raise VisageError(f"--w-cross-identity needs portraits: none found in {folder}")
    videos = faces_folder(args.videos, "videos")
    held = people_descriptors(videos, HELD_OUT, encoder) if videos.is_dir() else []
    if not held:
        log.warning("no held-out clips in %s: portraits not checked for lookalikes", videos)
    drop = lookalikes(clip_identities(cross, encoder), held)
    for name in sorted(drop):
        log.info("portrait %s left out: it looks like a held-out person", name)
    cross = [c for c in cross if c.name not in drop]
    log.info("cross-identity sources: %d portraits", len(cross))
    return cross


def _meta(
    args: argparse.Namespace, clips: list[ClipData], idents: dict[str, np.ndarray], out: Path
) -> int:
    from engine.runtime.neural import tier_folder
    from engine.training.finetune import FineTuneConfig
    from engine.training.meta import MetaConfig, run_meta

    init = Path(args.init) if args.init else tier_folder(args.tier)
    if not (init / "warp" / "config.json").is_file():
        raise VisageError(f"meta-training starts from trained base weights; none in {init}")
    cfg = MetaConfig(
        tier=args.tier,
        outer_steps=args.steps,
        inner_steps=args.inner_steps,
        inner=FineTuneConfig(lr=args.lr, batch=args.batch, perceptual_scales=_scales(args)),
        outer_lr=args.outer_lr,
        log_every=args.log_every,
        save_every=args.save_every,
        max_minutes=args.max_minutes,
    )
    if args.fresh:
        (out / "meta.pt").unlink(missing_ok=True)
    stats = run_meta(cfg, clips, idents, init, out, device=args.device)
    log.info("meta-training done: %s", " ".join(f"{k} {v:.4f}" for k, v in stats.items()))
    return 0


def _built_by_rank0(cache: Path, build: Callable[[], object]) -> None:
    """Rank 0 runs `build` (filling `cache`) and then marks it ready; under DDP the other
    ranks wait for the mark."""
    from engine.training.trainer import world

    rank, size = world()
    marker = cache / ".ready"
    if rank == 0:
        marker.unlink(missing_ok=True)
        build()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    elif size > 1:
        _wait_for(marker)


def _wait_for(marker: Path, timeout_s: float = 3600.0) -> None:
    """Other ranks wait for rank 0's clip cache (a file barrier: no process group yet)."""
    import time

    end = time.monotonic() + timeout_s
    while not marker.exists():
        if time.monotonic() > end:
            raise VisageError(f"timed out waiting for the clip cache ({marker.parent})")
        time.sleep(0.2)
