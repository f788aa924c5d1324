"""Starting the app: the `visage` command (the window when given no subcommand; every other
command is the engine's CLI) and `python -m app` (the window, with options for this run)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from app.models.camera import SAMPLE, SourceChoice
from engine.api import (
    LoaderOptions,
    PortraitRequest,
    RunnerOptions,
    VisageError,
    bundled_portraits,
    run_cli,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppOptions:
    """portrait/source: for this run only (None: the remembered ones). networks/backend: how
    the avatar is rendered. screenshots/screenshot_frames/timeout_s: save shots of the window
    after those numbers of avatar frames, then quit (for checks and documentation)."""

    portrait: str | None = None
    source: SourceChoice | None = None
    networks: bool = True
    backend: str = "auto"
    screenshots: Path | None = None
    screenshot_frames: tuple[int, ...] = (60,)
    timeout_s: float = 120.0


def run_app(options: AppOptions) -> int:
    """Open the window and run until it closes; returns the exit code."""
    from app.qt_env import prepare_qt_environment

    prepare_qt_environment()
    from PySide6.QtWidgets import QApplication

    from app.controller import AppController
    from app.engine_bridge import EngineBridge
    from app.main_window import MainWindow
    from app.settings_store import SettingsStore, default_settings_path
    from app.widgets.style import apply_style

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Visage")
    app.setApplicationDisplayName("Visage")
    apply_style(app)
    store = SettingsStore(default_settings_path())
    settings = store.load()
    loader = LoaderOptions(networks=options.networks, backend=options.backend)
    bridge = EngineBridge(RunnerOptions(loader=loader))
    bundled = [str(p) for p in bundled_portraits()]
    controller = AppController(bridge, settings, bundled, source=options.source)
    window = MainWindow(controller, bridge, store)
    window.show()
    given = PortraitRequest(options.portrait) if options.portrait else None
    portrait = given or controller.startup_request()
    bridge.start(controller.startup_source(), portrait)
    controller.started(portrait)
    if options.screenshots is not None:
        from app.screenshot import ScreenshotTaker

        ScreenshotTaker(
            window, bridge, options.screenshots, options.screenshot_frames, options.timeout_s
        )
    log.info("settings: %s", store.path)
    # Ctrl+C in the terminal closes the window like Quit (Qt would otherwise swallow it).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    try:
        code = int(app.exec())
    finally:
        bridge.stop()
    if bridge.unfinished:
        # A network compile is still running on a worker thread; it cannot be interrupted and
        # the interpreter's shutdown under it can crash. Everything is saved and released.
        logging.shutdown()
        os._exit(code)
    return code


def _window(args: argparse.Namespace) -> int:
    return run_app(AppOptions())


def main(argv: list[str] | None = None) -> int:
    """The `visage` command."""
    return run_cli(argv, gui=_window)


def source_choice(text: str) -> SourceChoice:
    """ "sample", a camera index ("0") or a video file path."""
    if text == "sample":
        return SAMPLE
    if text.isdigit():
        return SourceChoice("camera", camera=int(text))
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no video file at {path}")
    return SourceChoice("file", path=str(path))


def app_main(argv: list[str] | None = None) -> int:
    """`python -m app`: the window, with options for this run."""
    ap = argparse.ArgumentParser(prog="python -m app", description="The Visage window.")
    ap.add_argument("--portrait", help="portrait image for this run")
    ap.add_argument(
        "--driving", type=source_choice, help="'sample', a camera index or a video file"
    )
    ap.add_argument("--no-nets", action="store_true", help="geometric path only")
    ap.add_argument(
        "--backend", choices=("auto", "tensorrt", "torch.compile", "eager"), default="auto"
    )
    ap.add_argument("--screenshots", type=Path, help="save window shots here, then quit")
    ap.add_argument(
        "--screenshot-frames",
        default="60",
        help="comma-separated avatar-frame counts at which to take the shots (default 60)",
    )
    ap.add_argument("--timeout", type=float, default=120.0, help="give up on the shots after")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    frames = tuple(int(v) for v in args.screenshot_frames.split(",") if v.strip())
    options = AppOptions(
        portrait=args.portrait,
        source=args.driving,
        networks=not args.no_nets,
        backend=args.backend,
        screenshots=args.screenshots,
        screenshot_frames=frames,
        timeout_s=args.timeout,
    )
    try:
        return run_app(options)
    except VisageError as err:
        log.error("%s", err)
        return 2
