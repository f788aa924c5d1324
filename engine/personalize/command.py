"""`visage personalize` and `visage profiles`: the command-line side of personalization."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from engine.errors import VisageError
from engine.paths import profiles_dir
from engine.personalize.capture import scaled

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = {"cuda": 30.0, "cpu": 60.0}


def add_personalize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", required=True, help="a ~30 s video of you (see the guidance)")
    p.add_argument(
        "--out", help="profile folder (default: the profiles folder / a name made from --name)"
    )
    p.add_argument("--name", help="display name (default: the video's file name)")
    p.add_argument(
        "--budget",
        type=float,
        help="fine-tune time limit in seconds (default 30 on a GPU, 60 on a CPU)",
    )
    p.add_argument("--max-steps", type=int, help="stop after this many fine-tune steps")
    p.add_argument("--init", help="start from these networks (default: the meta-learned ones)")
    p.add_argument("--max-seconds", type=float, default=45.0, help="use this much of the video")


def read_recording(path: Path, max_seconds: float) -> tuple[list, float]:
    """The video's frames (scaled: long side at most capture.MAX_SIDE) and its measured rate."""
    from engine.capture.video_source import VideoFileSource

    with VideoFileSource(path) as source:
        fps = float(source.info.fps)
        frames = []
        for frame in source:
            if frame.timestamp_s >= max_seconds:
                break
            frames.append(scaled(frame.image))
    return frames, fps


def cmd_personalize(args: argparse.Namespace) -> int:
    from engine.device import probe_device
    from engine.personalize.personalize import personalize
    from engine.personalize.profile import slug
    from engine.training.finetune import Progress

    video = Path(args.video)
    name = args.name or video.stem
    out = Path(args.out) if args.out else profiles_dir() / slug(name)
    device = probe_device().device
    budget = args.budget if args.budget is not None else DEFAULT_BUDGET_S[device]
    images, fps = read_recording(video, args.max_seconds)
    log.info(
        "personalizing from %d frames of %s (%.1f fps) on %s, budget %.0f s; Ctrl+C cancels",
        len(images),
        video.name,
        fps,
        device,
        budget,
    )
    last = [-10.0]

    def show(p: Progress) -> None:
        if p.elapsed_s - last[0] >= 5.0 or p.eta_s == 0.0:
            last[0] = p.elapsed_s
            log.info(
                "fine-tune step %d  loss %.4f  %.0f s done, about %.0f s left",
                p.step,
                p.loss,
                p.elapsed_s,
                p.eta_s,
            )

    try:
        info = personalize(
            images,
            fps,
            out,
            name,
            budget_s=budget,
            init=Path(args.init) if args.init else None,
            device=device,
            max_steps=args.max_steps,
            progress=show,
        )
    except KeyboardInterrupt:
        log.error("cancelled: no profile was written and %s is as it was", out)
        return 130
    log.info(
        "profile %r saved to %s (%d steps in %.1f s); use it with `visage render --profile %s`",
        info.name,
        info.folder,
        info.steps,
        info.seconds,
        info.folder,
    )
    return 0


def add_profiles_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", help="profiles folder (default: the user's)")
    p.add_argument("--rename", nargs=2, metavar=("FOLDER", "NAME"), help="new display name")
    p.add_argument("--delete", metavar="FOLDER", help="delete a profile")


def cmd_profiles(args: argparse.Namespace) -> int:
    from engine.personalize.profile import delete_profile, list_profiles, rename_profile

    root = Path(args.root) if args.root else profiles_dir()

    def resolve(text: str) -> Path:
        path = Path(text)
        folder = path if path.is_dir() else root / text
        if not folder.is_dir():
            raise VisageError(f"no profile {text!r} in {root}")
        return folder

    if args.rename:
        info = rename_profile(resolve(args.rename[0]), args.rename[1])
        log.info("renamed %s to %r", info.folder.name, info.name)
    if args.delete:
        delete_profile(resolve(args.delete))
        log.info("deleted %s", args.delete)
    profiles = list_profiles(root)
    if not profiles:
        print(f"no profiles in {root}; make one with `visage personalize --video me.mp4`")
    for p in profiles:
        print(f"{p.folder.name}\t{p.name}\t{p.created}\t{p.tier} tier, {p.steps} steps")
    return 0


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--videos", help="clips: DIR/<person>/*.mp4 (default: the shared face data)")
    p.add_argument("--people", type=int, default=4, help="held-out people to adapt to")
    p.add_argument("--meta", help="meta-learned networks (default: the shipped ones)")
    p.add_argument("--steps", default="0,5,10,20,40,80", help="fine-tune steps to score at")
    p.add_argument("--test-frames", type=int, default=30, help="frames scored per person")
    p.add_argument("--plot", default="personalize_bench.png", help="where to save the plot")


def held_out_clips(videos: Path, people: int) -> list[tuple[Path, str]]:
    """The longest clip of each of the first `people` held-out people found under `videos`."""
    from engine.capture.video_source import probe_video
    from engine.training.clips import discover_clips
    from engine.training.command import HELD_OUT

    best: dict[str, tuple[int, Path]] = {}
    for clip, person in discover_clips(videos):
        if person in HELD_OUT:
            frames = probe_video(clip).frame_count_hint
            if person not in best or frames > best[person][0]:
                best[person] = (frames, clip)
    return [(best[p][1], p) for p in sorted(best)][:people]


def cmd_bench_personalize(args: argparse.Namespace) -> int:
    from engine.evaluation.personalize_bench import bench_person, format_results, plot_results
    from engine.paths import faces_folder
    from engine.personalize.personalize import default_init
    from engine.runtime.neural import tier_folder

    videos = faces_folder(args.videos, "videos")
    if not videos.is_dir():
        raise VisageError(f"no clips at {videos}; pass --videos DIR (DIR/<person>/*.mp4)")
    meta = Path(args.meta) if args.meta else default_init("cpu")
    if meta == tier_folder("cpu"):
        raise VisageError("no meta-learned networks shipped; pass --meta DIR")
    starts = {"pretrained": tier_folder("cpu"), "meta-learned": meta}
    checkpoints = tuple(int(v) for v in args.steps.split(","))
    clips = held_out_clips(videos, args.people)
    if not clips:
        raise VisageError(f"no held-out people's clips under {videos}")
    results = [
        bench_person(clip, person, starts, checkpoints, test_frames=args.test_frames)
        for clip, person in clips
    ]
    print(format_results(results, list(starts)))
    plot_results(results, list(starts), Path(args.plot))
    log.info("plot saved to %s", args.plot)
    return 0
