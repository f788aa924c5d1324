"""Video sources and writer against clips generated with the bundled ffmpeg binary."""

from __future__ import annotations

import itertools
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from engine.capture import video_source
from engine.capture.video_source import (
    CameraSource,
    VideoFileSource,
    VideoInfo,
    _measure_fps,
    _parse_ffmpeg_streams,
    _parse_rate_text,
    open_source,
    probe_video,
)
from engine.capture.video_writer import VideoWriter
from engine.errors import VideoSourceError, VideoWriteError

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
NTSC = Fraction(30000, 1001)
NTSC_FRAMES = 45  # 1.5 s
PAL_FRAMES = 20
RED_FRAMES = 5
AUDIO_RATE = 44100
FACES = Path(__file__).resolve().parents[2].parent / "shared/data/faces"
OBAMA_CLIP = FACES / "videos/obama/styletalk__samples_source_video_video_Obama_clip1.mp4"


def _ffmpeg(*args: str) -> None:
    result = subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")


def _testsrc(rate: str, size: str = "128x96") -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}"]


def _sine(duration_s: float) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={AUDIO_RATE}:d={duration_s}"]


_H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ntsc_audio: 128x96 29.97 fps 45 frames + 3 s of audio (longer than the video);
    ntsc_short_audio: same with 0.5 s of audio; ntsc_silent: no audio; pal: 25 fps 20 frames
    (.mkv); red: 64x48 solid red, 5 frames."""
    folder = tmp_path_factory.mktemp("clips")
    paths = {
        name: folder / f"{name}.{ext}"
        for name, ext in [
            ("ntsc_audio", "mp4"),
            ("ntsc_short_audio", "mp4"),
            ("ntsc_silent", "mp4"),
            ("pal", "mkv"),
            ("red", "mp4"),
        ]
    }
    ntsc = _testsrc("30000/1001")
    ntsc_out = ["-frames:v", str(NTSC_FRAMES), *_H264]
    _ffmpeg(*ntsc, *_sine(3.0), *ntsc_out, "-c:a", "aac", str(paths["ntsc_audio"]))
    _ffmpeg(*ntsc, *_sine(0.5), *ntsc_out, "-c:a", "aac", str(paths["ntsc_short_audio"]))
    _ffmpeg(*ntsc, *ntsc_out, str(paths["ntsc_silent"]))
    _ffmpeg(*_testsrc("25"), "-frames:v", str(PAL_FRAMES), *_H264, str(paths["pal"]))
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=red:size=64x48:rate=25",
        "-frames:v", str(RED_FRAMES), *_H264, str(paths["red"]),
    )  # fmt: skip
    return paths


def _decoded_frame_count(path: Path) -> int:
    with VideoFileSource(path) as source:
        return sum(1 for _ in source)


def _audio_duration_s(path: Path) -> float:
    """Duration of the first audio stream, from its decoded samples."""
    decode = ["-map", "0:a:0", "-ac", "1", "-ar", str(AUDIO_RATE), "-f", "s16le", "-"]
    command = [FFMPEG, "-nostdin", "-v", "error", "-i", str(path), *decode]
    pcm = subprocess.run(command, check=True, capture_output=True).stdout
    return len(pcm) / 2 / AUDIO_RATE


# --- probing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "fps", "frames", "has_audio"),
    [
        ("ntsc_audio", (128, 96), NTSC, NTSC_FRAMES, True),
        ("ntsc_silent", (128, 96), NTSC, NTSC_FRAMES, False),
        ("pal", (128, 96), Fraction(25), PAL_FRAMES, False),
        ("red", (64, 48), Fraction(25), RED_FRAMES, False),
    ],
)
def test_probe_reports_size_exact_rate_and_audio(
    clips: dict[str, Path],
    name: str,
    size: tuple[int, int],
    fps: Fraction,
    frames: int,
    has_audio: bool,
) -> None:
    info = probe_video(clips[name])
    assert isinstance(info.fps, Fraction)
    assert info == VideoInfo(
        path=clips[name].resolve(),
        width=size[0],
        height=size[1],
        fps=fps,
        frame_count_hint=frames,
        has_audio=has_audio,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("29.97", Fraction(30000, 1001)),
        ("23.98", Fraction(24000, 1001)),
        ("59.94", Fraction(60000, 1001)),
        ("25", Fraction(25)),
        ("12.50", Fraction(25, 2)),
        ("1k", Fraction(1000)),
    ],
)
def test_printed_rates_become_exact_fractions(text: str, expected: Fraction) -> None:
    assert _parse_rate_text(text) == expected


def test_stream_parser_handles_missing_rate_rotation_and_cover_art() -> None:
    stderr = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':\n"
        "  Duration: 00:00:02.50, start: 0.000000, bitrate: 100 kb/s\n"
        "  Stream #0:0[0x1](und): Video: mjpeg (Baseline), yuvj420p, 500x500, 90k tbr,"
        " 90k tbn (attached pic)\n"
        "  Stream #0:1[0x2](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv,"
        " progressive), 640x360 [SAR 1:1 DAR 16:9], 95 kb/s, 90k tbn (default)\n"
        "    Side data:\n"
        "      Display Matrix: rotation of -90.00 degrees\n"
        "  Stream #0:2[0x3](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo\n"
        "At least one output file must be specified\n"
    )
    report = _parse_ffmpeg_streams(stderr)
    assert report is not None
    assert report.video_size == (360, 640)  # rotated upright, cover art skipped
    assert report.rate_text is None  # no fps / tbr: probe_video measures it instead
    assert report.has_audio
    assert report.duration_s == pytest.approx(2.5)
    assert _parse_ffmpeg_streams("Error opening input file x.mp4.\n") is None


def test_rate_measured_from_timestamps(clips: dict[str, Path]) -> None:
    assert _measure_fps(clips["ntsc_silent"]) == NTSC
    assert _measure_fps(clips["pal"]) == Fraction(25)


# --- reading -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "frames", "fps"),
    [("ntsc_audio", NTSC_FRAMES, NTSC), ("pal", PAL_FRAMES, Fraction(25))],
)
def test_file_source_yields_every_frame_with_exact_timestamps(
    clips: dict[str, Path], name: str, frames: int, fps: Fraction
) -> None:
    with VideoFileSource(clips[name]) as source:
        decoded = list(source)
    assert [f.index for f in decoded] == list(range(frames))
    assert [f.timestamp_s for f in decoded] == [float(i / fps) for i in range(frames)]
    for frame in decoded:
        assert frame.image.shape == (96, 128, 3)
        assert frame.image.dtype == np.uint8
        assert frame.image.flags["C_CONTIGUOUS"]
    # testsrc moves: consecutive frames differ, so no frame was repeated
    assert all(not np.array_equal(a.image, b.image) for a, b in itertools.pairwise(decoded))


def test_file_source_is_rgb(clips: dict[str, Path]) -> None:
    with VideoFileSource(clips["red"]) as source:
        images = [frame.image for frame in source]
    assert len(images) == RED_FRAMES
    mean = np.stack(images).reshape(-1, 3).mean(axis=0)
    assert mean[0] > 230 and mean[1] < 30 and mean[2] < 30, mean


def test_file_source_max_frames_and_restart(clips: dict[str, Path]) -> None:
    with open_source(str(clips["pal"]), max_frames=7) as source:
        assert isinstance(source, VideoFileSource)
        first = [frame.index for frame in source]
        second = list(source)  # a new pass starts from the first frame again
    assert first == list(range(7))
    assert [frame.index for frame in second] == list(range(7))
    with VideoFileSource(clips["pal"]) as fresh:
        assert np.array_equal(next(iter(fresh)).image, second[0].image)


def _make_unusable(folder: Path, kind: str) -> Path:
    """A path that is not a usable video: missing, empty, noise, text, or a directory."""
    notes = "These are my notes about the video.\nSecond line of notes.\n" * 40
    if kind == "missing":
        return folder / "missing.mp4"
    if kind == "empty":
        path = folder / "empty.mp4"
        path.write_bytes(b"")
    elif kind == "random-bytes":
        path = folder / "noise.mp4"
        path.write_bytes(np.random.default_rng(0).bytes(20000))
    elif kind in ("text-txt", "text-mp4"):
        path = folder / ("notes.txt" if kind == "text-txt" else "notes.mp4")
        path.write_text(notes)  # as .txt, ffmpeg's tty demuxer would render it as "video"
    else:
        path = folder
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "does not exist"),
        ("empty", r"empty \(0 bytes\)"),
        ("random-bytes", "could not be opened"),
        ("text-txt", "is a text file"),
        ("text-mp4", "could not be opened"),
        ("directory", "is a directory"),
    ],
)
def test_unusable_files_raise_video_source_error_naming_the_path(
    tmp_path: Path, kind: str, message: str
) -> None:
    path = _make_unusable(tmp_path, kind)
    for opener in (probe_video, VideoFileSource, open_source):
        with pytest.raises(VideoSourceError, match=message) as caught:
            opener(str(path))
        assert f"'{path}'" in str(caught.value)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    audio = tmp_path / "voice.m4a"
    _ffmpeg(*_sine(0.5), "-c:a", "aac", str(audio))
    with pytest.raises(VideoSourceError, match="no video stream") as caught:
        VideoFileSource(audio)
    assert str(audio) in str(caught.value)


def test_missing_camera_raises_actionable_error() -> None:
    with pytest.raises(VideoSourceError, match="No camera could be opened at index 97") as e:
        open_source("97")
    assert "video file" in str(e.value)
    with pytest.raises(VideoSourceError, match="index 97"):
        CameraSource(97)


class _FakeCapture:
    """Stands in for cv2.VideoCapture(index): delivers `script` (True = frame, False = fail)."""

    def __init__(self, script: list[bool]) -> None:
        self.script = list(script)
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return 1000.0  # the lie that measured_fps must not repeat
        return {cv2.CAP_PROP_FRAME_WIDTH: 8.0, cv2.CAP_PROP_FRAME_HEIGHT: 6.0}.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not self.script or not self.script.pop(0):
            return False, None
        bgr = np.zeros((6, 8, 3), np.uint8)
        bgr[..., 0] = 255  # blue in OpenCV's BGR order
        return True, bgr

    def release(self) -> None:
        self.released = True


def _fake_camera(monkeypatch: pytest.MonkeyPatch, script: list[bool]) -> _FakeCapture:
    fake = _FakeCapture(script)
    monkeypatch.setattr(video_source.cv2, "VideoCapture", lambda index: fake)
    clock = iter(np.arange(0.0, 100.0, 0.04))  # frames arrive every 40 ms: 25 fps
    monkeypatch.setattr(video_source, "_monotonic", lambda: float(next(clock)))
    return fake


def test_camera_read_iterate_and_measured_fps(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_camera(monkeypatch, [True] * 3 + [False] + [True] * 4 + [False] * 5)
    with CameraSource(0, max_failed_reads=3, retry_delay_s=0.0, fps_window=4) as camera:
        assert camera.measured_fps is None
        first = camera.read()
        assert first is not None and first.index == 0
        assert first.image.shape == (6, 8, 3) and first.image.flags["C_CONTIGUOUS"]
        assert first.image[0, 0].tolist() == [0, 0, 255]  # BGR blue became RGB blue
        frames = list(camera)  # one failed read is tolerated, three in a row end it
        assert [f.index for f in frames] == list(range(1, 7))
        assert all(b.timestamp_s > a.timestamp_s for a, b in itertools.pairwise(frames))
        assert camera.measured_fps == pytest.approx(25.0)
        assert camera.read() is None  # nothing more: None, not an exception
    assert fake.released


def test_camera_max_frames_and_no_frames_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_camera(monkeypatch, [True] * 10)
    assert len(list(CameraSource(0, max_frames=4))) == 4
    _fake_camera(monkeypatch, [False] * 10)
    with pytest.raises(VideoSourceError, match="delivered no frames"):
        list(CameraSource(1, max_failed_reads=3, retry_delay_s=0.0))


def test_real_clip(clips: dict[str, Path]) -> None:
    if not OBAMA_CLIP.is_file():
        pytest.skip(f"shared face data absent: {OBAMA_CLIP} not found")
    info = probe_video(OBAMA_CLIP)
    assert (info.width, info.height, info.fps, info.has_audio) == (256, 256, Fraction(30), False)
    assert info.frame_count_hint == 602
    assert _decoded_frame_count(OBAMA_CLIP) == 602


# --- writing -------------------------------------------------------------------------------


def _gray_frames(count: int, width: int = 128, height: int = 96) -> list[np.ndarray]:
    """Frame i is uniformly gray at level 20 + 5 i: order, drops and repeats are visible."""
    return [np.full((height, width, 3), 20 + 5 * i, np.uint8) for i in range(count)]


@pytest.mark.parametrize(
    ("audio_name", "frames", "expect_audio"),
    [
        ("ntsc_audio", 30, True),  # source audio (3 s) longer than the video: trimmed
        ("ntsc_short_audio", 40, True),  # source audio (0.5 s) shorter: video not cut
        ("ntsc_silent", 30, False),  # source without audio: silent output
        (None, 30, False),
    ],
)
def test_writer_round_trip(
    clips: dict[str, Path],
    tmp_path: Path,
    audio_name: str | None,
    frames: int,
    expect_audio: bool,
) -> None:
    out = tmp_path / "out.mp4"
    audio_from = clips[audio_name] if audio_name else None
    images = _gray_frames(frames)
    with VideoWriter(out, size=(128, 96), fps=NTSC, audio_from=audio_from, crf=10) as writer:
        for image in images:
            writer.write(image)
        assert writer.frames_written == frames
        assert not out.exists()  # only appears on close
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]

    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.has_audio) == (128, 96, NTSC, expect_audio)
    with VideoFileSource(out) as source:
        levels = [round(float(frame.image.mean())) for frame in source]
    assert len(levels) == frames
    assert all(abs(got - int(img[0, 0, 0])) <= 2 for got, img in zip(levels, images, strict=True))

    if expect_audio:
        video_s = frames / NTSC
        audio_s = _audio_duration_s(out)
        assert audio_s <= video_s + 1 / NTSC
        if audio_name == "ntsc_audio":
            assert audio_s >= video_s - 1 / NTSC


def test_writer_pads_odd_sizes_by_edge_replication(tmp_path: Path) -> None:
    out = tmp_path / "odd.mkv"
    image = np.zeros((49, 65, 3), np.uint8)
    image[:, -1] = (200, 200, 200)  # last column and bottom row bright
    image[-1, :] = (200, 200, 200)
    with VideoWriter(out, size=(65, 49), fps=Fraction(25), crf=0) as writer:
        assert writer.output_size == (66, 50)
        writer.write(image)
    with VideoFileSource(out) as source:
        (frame,) = list(source)
    assert frame.image.shape == (50, 66, 3)
    assert frame.image[10:40, -1].mean() > 150  # replicated column, not black padding
    assert frame.image[-1, 10:50].mean() > 150
    assert frame.image[10:40, 10:50].mean() < 30


def test_exception_inside_with_leaves_no_output_and_keeps_old_file(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, (128, 96), NTSC) as writer:
        for image in _gray_frames(5):
            writer.write(image)
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []

    out.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, (128, 96), NTSC) as writer:
        writer.write(_gray_frames(1)[0])
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == ["out.mp4"]
    assert out.read_bytes() == b"previous result"


def test_ffmpeg_failure_raises_video_write_error_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, (128, 96), NTSC)
    writer.write(_gray_frames(1)[0])
    writer._process.kill()  # simulate the encoder dying (disk full, killed, ...)
    writer._process.wait()
    with pytest.raises(VideoWriteError, match="failed") as caught:
        for image in _gray_frames(200):  # fills the pipe buffer, then breaks
            writer.write(image)
        writer.close()
    assert str(out) in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_writer_rejects_bad_paths(tmp_path: Path, clips: dict[str, Path]) -> None:
    with pytest.raises(VideoWriteError, match="does not exist") as caught:
        VideoWriter(tmp_path / "no_such_dir" / "out.mp4", (128, 96), NTSC)
    assert "no_such_dir" in str(caught.value)
    with pytest.raises(VideoWriteError, match=r"\.webm"):
        VideoWriter(tmp_path / "out.webm", (128, 96), NTSC)
    with pytest.raises(VideoWriteError, match=r"missing\.wav"):
        VideoWriter(tmp_path / "out.mp4", (128, 96), NTSC, audio_from=tmp_path / "missing.wav")
    assert os.listdir(tmp_path) == []


def test_write_rejects_wrong_images_and_stays_usable(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with VideoWriter(out, (128, 96), Fraction(25)) as writer:
        with pytest.raises(ValueError, match=r"\(96, 128, 3\).*\(128, 96, 3\)"):
            writer.write(np.zeros((128, 96, 3), np.uint8))
        with pytest.raises(ValueError, match="float32"):
            writer.write(np.zeros((96, 128, 3), np.float32))
        with pytest.raises(ValueError, match=r"\(96, 128\)"):
            writer.write(np.zeros((96, 128), np.uint8))
        writer.write(np.zeros((96, 128, 3), np.uint8))
    assert _decoded_frame_count(out) == 1


def test_closing_without_frames_raises(tmp_path: Path) -> None:
    with (
        pytest.raises(VideoWriteError, match="No frames"),
        VideoWriter(tmp_path / "out.mp4", (128, 96), NTSC),
    ):
        pass
    assert os.listdir(tmp_path) == []
