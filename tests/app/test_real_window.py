"""The real app in a real X server (Xvfb): launched as `python -m app` on the sample clip, it
saves two screenshots of its window read back from the screen; the avatar pane must show a
face, Mona Lisa's, that moves between them, and the camera pane the driver's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.landmarks.mediapipe_tracker import detect_faces
from engine.paths import portraits_dir

REPO = Path(__file__).resolve().parents[2]
SCREEN = "1600x1000x24"


def _free_display() -> int:
    for number in range(91, 300):
        if not (
            Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists()
        ):
            return number
    raise RuntimeError("no free X display number")


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (Debian/Ubuntu: apt-get install xvfb)")
    number = _free_display()
    server = subprocess.Popen(
        [xvfb, f":{number}", "-screen", "0", SCREEN, "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + 10
    while not socket.exists() and server.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert socket.exists(), f"Xvfb did not start on :{number}"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def _crop(image: np.ndarray, rect: list[int]) -> np.ndarray:
    x, y, w, h = rect
    return image[y : y + h, x : x + w]


def _face_centre(image: np.ndarray) -> np.ndarray:
    faces = detect_faces(np.ascontiguousarray(image))
    assert faces, "no face found"
    return faces[0].points[:, :2].astype(np.float64).mean(axis=0)


@pytest.mark.slow
def test_real_window_shows_the_moving_avatar(display: str, tmp_path: Path) -> None:
    env = dict(os.environ, DISPLAY=display, VISAGE_CONFIG_DIR=str(tmp_path / "config"))
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("WAYLAND_DISPLAY", None)
    shots = tmp_path / "shots"
    command = [
        sys.executable, "-m", "app", "--driving", "sample", "--backend", "eager",
        "--screenshots", str(shots), "--screenshot-frames", "40,90", "--timeout", "150",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    infos = [json.loads((shots / f"shot-{i}.json").read_text()) for i in (1, 2)]
    images = [np.asarray(Image.open(shots / f"shot-{i}.png").convert("RGB")) for i in (1, 2)]
    assert images[0].shape[:2] == (infos[0]["window_size"][1], infos[0]["window_size"][0])
    assert images[0].std() > 20  # a real picture, not a blank window
    avatars = [_crop(img, info["avatar_rect"]) for img, info in zip(images, infos, strict=True)]
    cameras = [_crop(img, info["camera_rect"]) for img, info in zip(images, infos, strict=True)]
    assert infos[1]["sequence"] > infos[0]["sequence"]
    # the avatar pane shows Mona Lisa's face where it is in the painting...
    portrait = np.asarray(Image.open(portraits_dir() / "mona_lisa.jpg").convert("RGB"))
    own = _face_centre(portrait) * (avatars[0].shape[1] / portrait.shape[1])
    for avatar in avatars:
        assert np.linalg.norm(_face_centre(avatar) - own) < 0.05 * avatar.shape[1]
    # ...and it moves: the upper half (the head) changes between the two shots, while the
    # bottom quarter (her hands, far from the head) stays as painted
    height = avatars[0].shape[0]
    head, hands = slice(None, height // 2), slice(3 * height // 4, None)
    moved = np.abs(avatars[0][head].astype(int) - avatars[1][head].astype(int)).mean()
    still = np.abs(avatars[0][hands].astype(int) - avatars[1][hands].astype(int)).mean()
    assert moved > 1.0 and still < 0.5, (moved, still)
    # the camera pane shows the driver (the sample clip), elsewhere and differently framed
    assert abs(_face_centre(cameras[0])[0] / cameras[0].shape[1] - 0.5) < 0.2
    assert "animating mona_lisa.jpg with the" in result.stderr
