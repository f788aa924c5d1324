"""The `visage` command: render, bench, eval, train, personalize, profiles, bench-personalize,
doctor, self-test. Errors for the user end here."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import VisageError

log = logging.getLogger("visage")
R = TypeVar("R")  # one evaluation's result


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"size must look like 512x512, got {text!r}") from err
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError("size must be between 16 and 8192 pixels per side")
    return w, h


def _strength(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 2.0:
        raise argparse.ArgumentTypeError("strengths are within [0, 2]")
    return value


def _default_portrait() -> Path:
    from engine.paths import bundled_portraits

    return bundled_portraits()[0]


def _add_net_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-nets", action="store_true", help="geometric path only (no networks)")
    p.add_argument("--tier", choices=("cpu", "gpu"), help="network size (default: by device)")
    p.add_argument("--models", help="folder with a tier's networks (default: assets/models/TIER)")
    p.add_argument(
        "--backend",
        choices=("auto", "tensorrt", "torch.compile", "eager"),
        default="auto",
        help="how the networks run (auto: best available, reported)",
    )


def _default_tier() -> str:
    from engine.device import probe_device
    from engine.runtime.neural import tier_folder

    gpu = probe_device().device == "cuda" and (tier_folder("gpu") / "warp").is_dir()
    return "gpu" if gpu else "cpu"


def _neural_models(args: argparse.Namespace) -> Any:
    """The networks to run, or None for the geometric path (asked for, or none shipped)."""
    from engine.errors import ConfigError
    from engine.runtime.neural import load_models

    if getattr(args, "no_nets", False):
        return None
    tier = args.tier or _default_tier()
    try:
        models = load_models(tier, Path(args.models) if args.models else None)
    except ConfigError as err:
        if args.models or args.tier:
            raise
        log.warning("%s: using the geometric path", err)
        return None
    log.info("networks: %s tier from %s", tier, models.folder)
    return models


def _device() -> str:
    from engine.device import probe_device

    return probe_device().device


def _profile(args: argparse.Namespace) -> Any:
    """The personalized profile asked for with --profile (a folder or a name), or None."""
    if not getattr(args, "profile", None):
        return None
    from engine.paths import profiles_dir
    from engine.personalize.profile import load_profile

    path = Path(args.profile)
    profile = load_profile(path if path.is_dir() else profiles_dir() / args.profile)
    if profile.tier != "cpu":
        raise VisageError(f"profile {profile.name!r} is for the {profile.tier} tier")
    log.info("profile %r: its source image and fine-tuned networks", profile.name)
    return profile


def cmd_render(args: argparse.Namespace) -> int:
    from engine.capture.video_source import open_source
    from engine.portrait import prepare_portrait
    from engine.runtime.pipeline import Pipeline
    from engine.runtime.render import render_video
    from engine.types import Controls

    profile = _profile(args)
    if profile is not None:
        args.portrait, args.models, args.tier = str(profile.source), str(profile.folder), "cpu"
    portrait_path = Path(args.portrait) if args.portrait else _default_portrait()
    driving = args.driving if args.driving is not None else _default_driving()
    portrait = prepare_portrait(portrait_path, output_size=args.size)
    for note in portrait.notes:
        log.warning(note)
    controls = Controls(args.expression, args.pose, args.smoothing)
    max_frames = args.max_frames
    if driving.isdigit() and max_frames is None:
        max_frames = int(args.seconds * 30)
    pipeline = Pipeline(
        portrait, neural=_neural_models(args), device=_device(), backend=args.backend
    )
    try:
        with open_source(driving, max_frames=max_frames) as source:
            summary = render_video(
                pipeline, source, Path(args.out), controls, progress=not args.no_progress
            )
    finally:
        pipeline.close()
    log.info(
        "wrote %s: %d frames at %s fps (%d without a face)",
        summary.out,
        summary.frames,
        summary.fps,
        summary.faces_lost,
    )
    return 0


def _default_driving() -> str:
    """Camera 0 when one delivers frames, else the bundled sample clip."""
    from engine.capture.video_source import CameraSource
    from engine.paths import sample_driving_clip

    try:
        with CameraSource(0) as cam:
            if cam.read() is not None:
                return "0"
    except VisageError:
        pass
    log.info("no webcam found: driving with the bundled sample clip")
    return str(sample_driving_clip())


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.evaluation.bench import format_bench, run_bench
    from engine.paths import sample_driving_clip, shared_faces_dir

    portrait = Path(args.portrait) if args.portrait else _default_portrait()
    real = shared_faces_dir() / "videos/obama/styletalk__samples_source_video_video_Obama_clip1.mp4"
    driving = (
        Path(args.driving) if args.driving else (real if real.exists() else sample_driving_clip())
    )
    from engine.errors import ConfigError
    from engine.runtime.neural import load_models, untrained_models

    device = _device()
    tiers = args.tiers.split(",") if args.tiers else ["cpu"] + (["gpu"] if device == "cuda" else [])
    runs: list[tuple[str, Any]] = [("geometric path", None)]
    for tier in [] if args.no_nets else tiers:
        try:
            models, note = load_models(tier, Path(args.models) if args.models else None), ""
        except ConfigError:
            models, note = untrained_models(tier), " (untrained weights: timing only)"
        runs.append((f"{tier} tier on {device}{note}", models))
    for label, models in runs:
        result = run_bench(
            portrait,
            driving,
            args.size,
            args.driving_size,
            args.frames,
            neural=models,
            device=device,
            backend=args.backend,
            label=label,
            split_cores=not args.no_split_cores,
        )
        print(format_bench(result, portrait.name, driving.name) + "\n")
    if device != "cuda" and not args.tiers:
        print("GPU tier: needs CUDA; `visage bench --tiers gpu` times it on this CPU.")
    return 0


def _eval_methods(args: argparse.Namespace) -> dict[str, Any]:
    from engine.evaluation.reenactment import GEOMETRIC
    from engine.runtime.neural import load_models

    methods: dict[str, Any] = {GEOMETRIC: None}
    if args.no_nets:
        return methods
    tiers = [args.tier] if args.tier else ["cpu"] + (["gpu"] if _device() == "cuda" else [])
    for tier in tiers:
        methods[f"neural ({tier} tier)"] = load_models(
            tier, Path(args.models) if args.models else None
        )
    return methods


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.evaluation.reenactment import REAL, evaluate_clip, format_table
    from engine.paths import faces_folder
    from engine.training.command import HELD_OUT

    folder = faces_folder(args.clips, "videos")
    clips = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".mp4", ".mov", ".avi"})
    if args.cross:
        return _eval_cross(args, [c for c in clips if c.parent.name in HELD_OUT])
    if args.held_out:
        clips = [c for c in clips if c.parent.name in HELD_OUT]
    if not clips:
        raise VisageError(f"No video clips found under {folder}.")
    clips = clips[: args.limit] if args.limit else clips
    methods = _eval_methods(args)
    jobs = [
        (
            clip.name,
            functools.partial(
                evaluate_clip,
                clip,
                max_frames=args.max_frames,
                methods=methods,
                device=_device(),
                backend=args.backend,
                control=args.control,
            ),
        )
        for clip in clips
    ]
    results = _evaluate_all(
        jobs,
        lambda r: (
            "PSNR " + ", ".join(f"{k} {v.psnr:.2f}" for k, v in r.scores.items() if k != REAL)
        ),
    )
    return _report(results, format_table, args.json, "clip")


def _evaluate_all(
    jobs: Sequence[tuple[str, Callable[[], R]]], summary: Callable[[R], str]
) -> list[R]:
    """Run each named evaluation in turn, logging its `summary`; one that raises VisageError
    (an unusable clip or portrait) is skipped with the reason."""
    results: list[R] = []
    for i, (name, evaluate) in enumerate(jobs, 1):
        try:
            r = evaluate()
        except VisageError as err:
            log.warning("skipped %s: %s", name, err)
            continue
        results.append(r)
        log.info("[%d/%d] %s: %s", i, len(jobs), name, summary(r))
    return results


def _report(
    results: list[Any], table: Callable[[list[Any]], str], json_path: str | None, what: str
) -> int:
    """Print the results' table (and write them as JSON when asked)."""
    if not results:
        raise VisageError(f"No {what} could be evaluated.")
    print(table(results))
    if json_path:
        Path(json_path).write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


def _eval_cross(args: argparse.Namespace, clips: list[Path]) -> int:
    """Held-out portraits (of the test or the validation split), each driven by the first clip
    of the next held-out person."""
    from engine.evaluation.cross import cross_pairs, evaluate_cross, format_cross_table
    from engine.paths import faces_folder
    from engine.training.cross import portrait_split

    folder = faces_folder(args.portraits, "portraits")
    if not folder.is_dir():
        raise VisageError(f"No portraits folder at {folder}; pass --portraits DIR.")
    firsts = [next(c for c in clips if c.parent == p) for p in sorted({c.parent for c in clips})]
    portraits = getattr(portrait_split(folder), args.split)
    pairs = cross_pairs(portraits, firsts, args.cross)
    if not pairs:
        raise VisageError(f"No {args.split} portraits in {folder} or held-out clips to drive them.")
    methods = _eval_methods(args)
    jobs = [
        (
            f"{portrait.name} driven by {clip.parent.name}",
            functools.partial(
                evaluate_cross,
                portrait,
                clip,
                methods,
                args.max_frames,
                device=_device(),
                backend=args.backend,
            ),
        )
        for portrait, clip in pairs
    ]
    results = _evaluate_all(
        jobs,
        lambda r: "identity " + ", ".join(f"{k} {v.id_sim:.4f}" for k, v in r.scores.items()),
    )
    return _report(results, format_cross_table, args.json, "portrait")


def cmd_doctor(args: argparse.Namespace) -> int:
    import platform

    import cv2
    import numpy

    from engine.capture.video_source import ffmpeg_executable
    from engine.capture.virtual_camera import probe_virtual_camera
    from engine.device import probe_device

    rows: list[tuple[str, str]] = [
        ("python", platform.python_version()),
        ("os", platform.platform()),
    ]
    try:
        from engine.landmarks.mediapipe_tracker import detect_faces, mediapipe_version

        detect_faces(numpy.zeros((64, 64, 3), numpy.uint8))
        rows.append(("mediapipe", f"{mediapipe_version()} (Face Mesh 478 points: ok)"))
    except Exception as err:  # doctor reports every failure instead of stopping
        rows.append(("mediapipe", f"FAILED: {err}"))
    rows += [("opencv", cv2.__version__), ("numpy", numpy.__version__)]
    dev = probe_device()
    rows += [
        ("torch", dev.torch_version or "not installed"),
        ("device", f"{dev.device} ({dev.device_name})"),
        ("CUDA", dev.cuda_version or "not available (CPU path)"),
        ("compile backends", ", ".join(dev.backends) or "none"),
        ("ffmpeg", ffmpeg_executable()),
    ]
    _, vcam = probe_virtual_camera()
    rows.append(("virtual camera", vcam))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))
    return 0


def cmd_self_test(args: argparse.Namespace) -> int:
    """A few frames of the bundled sample through the real pipeline, checked: 0 passed, 1 not."""
    from engine.paths import assets_dir, is_frozen, sample_driving_clip

    where = "the frozen bundle" if is_frozen() else "the source tree"
    log.info("self-test: running from %s, assets in %s", where, assets_dir())
    nets = argparse.Namespace(no_nets=False, tier=None, models=None)
    try:
        from engine.runtime.selftest import run_self_test  # imports torch, MediaPipe, OpenCV

        result = run_self_test(
            _default_portrait(), sample_driving_clip(), _neural_models(nets), _device()
        )
    except VisageError as err:
        log.error("self-test FAILED: %s", err)
        return 1
    except Exception as err:  # the self-test reports whatever breaks, with its cause
        log.exception("self-test FAILED: %s: %s", type(err).__name__, err)
        return 1
    for line in result.report():
        log.info("self-test: %s", line)
    problems = result.problems()
    for problem in problems:
        log.error("self-test FAILED: %s", problem)
    if not problems:
        log.info("self-test passed")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="visage", description="Real-time portrait avatar.")
    ap.add_argument(
        "--headless",
        action="store_true",
        help="render the bundled portrait to visage_output.mp4 instead of a window",
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument(
        "--self-test",
        action="store_true",
        help="render a few frames of the bundled sample headless, check them, exit 0 if sane",
    )
    sub = ap.add_subparsers(dest="command")

    r = sub.add_parser("render", help="animate a portrait with a video file or camera")
    r.add_argument("--portrait", help="portrait image (default: the first bundled portrait)")
    r.add_argument(
        "--driving",
        help="driving video file or camera index (default: webcam 0, else the bundled sample clip)",
    )
    r.add_argument("--out", default="visage_output.mp4")
    r.add_argument("--size", type=_size, help="output WxH (default: the portrait's size)")
    r.add_argument("--max-frames", type=int)
    r.add_argument("--seconds", type=float, default=10.0, help="camera recording length")
    r.add_argument("--expression", type=_strength, default=1.0)
    r.add_argument("--pose", type=_strength, default=1.0)
    r.add_argument("--smoothing", type=float, default=0.5)
    r.add_argument("--no-progress", action="store_true")
    _add_net_options(r)
    r.add_argument(
        "--profile", help="a personalized profile (folder or name): its face and networks"
    )
    r.set_defaults(func=cmd_render)

    b = sub.add_parser("bench", help="per-stage timings, FPS and peak memory on a real clip")
    b.add_argument("--portrait")
    b.add_argument("--driving")
    b.add_argument("--size", type=int, default=512, help="square output side")
    b.add_argument("--driving-size", type=int, default=256)
    b.add_argument("--frames", type=int, default=300)
    b.add_argument("--tiers", help="comma-separated tiers to time (default: cpu, + gpu on CUDA)")
    b.add_argument(
        "--no-split-cores",
        action="store_true",
        help="one thread count for both loop threads, unpinned (the app splits the cores)",
    )
    _add_net_options(b)
    b.set_defaults(func=cmd_bench)

    e = sub.add_parser("eval", help="self-reenactment scores vs. a static baseline")
    e.add_argument("--clips", help="folder of clips (default: ../shared/data/faces/videos)")
    e.add_argument("--max-frames", type=int, default=150)
    e.add_argument("--limit", type=int, help="evaluate only the first N clips")
    e.add_argument("--json", help="also write per-clip results here")
    e.add_argument(
        "--control",
        action="store_true",
        help="also score the geometric path's outputs after a JPEG q95 round trip: how much "
        "the tracker-based scores move for a change nobody can see",
    )
    e.add_argument(
        "--held-out", action="store_true", help="only the identities kept out of training"
    )
    e.add_argument(
        "--cross",
        type=int,
        metavar="N",
        help="cross-identity instead: N held-out portraits driven by held-out people's clips",
    )
    e.add_argument("--portraits", help="portraits for --cross (default: ../shared/.../portraits)")
    e.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="--cross portraits: the test split (report these), or the validation split (choose "
        "between trained weights on these); neither is ever trained on",
    )
    _add_net_options(e)
    e.set_defaults(func=cmd_eval)

    t = sub.add_parser("train", help="train the networks on talking-head clips (torchrun ok)")
    from engine.training.command import add_arguments, cmd_train

    add_arguments(t)
    t.set_defaults(func=cmd_train)

    from engine.personalize.command import (
        add_bench_arguments,
        add_personalize_arguments,
        add_profiles_arguments,
        cmd_bench_personalize,
        cmd_personalize,
        cmd_profiles,
    )

    pz = sub.add_parser("personalize", help="fine-tune the networks to you from a ~30 s video")
    add_personalize_arguments(pz)
    pz.set_defaults(func=cmd_personalize)
    pr = sub.add_parser("profiles", help="list, rename or delete personalized profiles")
    add_profiles_arguments(pr)
    pr.set_defaults(func=cmd_profiles)
    bp = sub.add_parser(
        "bench-personalize", help="quality vs fine-tune time on held-out people, with a plot"
    )
    add_bench_arguments(bp)
    bp.set_defaults(func=cmd_bench_personalize)

    d = sub.add_parser("doctor", help="report MediaPipe, torch, CUDA, compile and camera backends")
    d.set_defaults(func=cmd_doctor)
    return ap


def main(
    argv: list[str] | None = None, gui: Callable[[argparse.Namespace], int] | None = None
) -> int:
    """gui: opens the desktop window when no subcommand (and no --headless) is given; the app
    passes it (`visage` is app.launcher:main), the engine never imports the app."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.self_test:
        args.command, args.func = "self-test", cmd_self_test
    if args.command is None and gui is not None and not args.headless:
        args.func = gui
    elif args.command is None:
        if not args.headless:
            log.info("no desktop window from engine.cli (run `visage`); rendering headless")
        args = build_parser().parse_args([*(["-v"] if args.verbose else []), "render"])
    try:
        return int(args.func(args))
    except VisageError as err:
        log.error("%s", err)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
