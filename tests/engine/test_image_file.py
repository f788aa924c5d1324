"""`load_image`: clear errors for unusable files, and RGB uint8 out of every usable one."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.capture.image_file import MAX_PIXELS, MAX_SIDE, load_image
from engine.errors import ImageLoadError
from engine.paths import assets_dir

PORTRAITS = assets_dir() / "portraits"
EXIF_ORIENTATION = 0x0112


def _load_error(path: Path) -> str:
    """The message of the ImageLoadError that loading `path` must raise."""
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert "\n" not in message, f"the message should be one line: {message!r}"
    return message


def _assert_rgb(image: np.ndarray, height: int, width: int) -> None:
    assert image.shape == (height, width, 3)
    assert image.dtype == np.uint8
    assert image.flags["C_CONTIGUOUS"]


# --- unusable files -------------------------------------------------------------------------


def test_missing_file_names_the_path_and_says_to_check_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "my_portrait.jpg"
    message = _load_error(path)
    assert "my_portrait.jpg" in message
    assert "not found" in message
    assert "Check the path" in message


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "holiday_photos"
    folder.mkdir()
    message = _load_error(folder)
    assert "holiday_photos" in message
    assert "not a file" in message


def test_random_bytes_with_jpg_extension(tmp_path: Path) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 20_000, np.uint8).tobytes())
    message = _load_error(path)
    assert "noise.jpg" in message
    assert "not an image Visage can read" in message
    assert "re-saving" in message


def test_text_file_renamed_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("This is a shopping list, not a picture.\n" * 50)
    message = _load_error(path)
    assert "notes.png" in message
    assert "not an image Visage can read" in message
    assert "JPEG, PNG or WebP" in message


@pytest.mark.parametrize("source", ["mona_lisa.jpg", "eileen_collins.png"])
def test_truncated_image_is_reported_as_damaged(tmp_path: Path, source: str) -> None:
    data = (PORTRAITS / source).read_bytes()
    path = tmp_path / f"cut_{source}"
    path.write_bytes(data[: int(len(data) * 0.4)])
    message = _load_error(path)
    assert path.name in message
    assert "damaged or truncated" in message
    assert "Re-download or re-export" in message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_above_the_pixel_limit_is_refused_with_advice(tmp_path: Path) -> None:
    # 12000x9000 = 108 MP, just above the 100 MP limit; a 1-bit PNG of it is a few kilobytes.
    path = tmp_path / "poster_scan.png"
    Image.new("1", (12000, 9000)).save(path)
    assert MAX_PIXELS < 12000 * 9000
    message = _load_error(path)
    assert "poster_scan.png" in message
    assert "12000x9000" in message
    assert "100 MP limit" in message
    assert "Save a smaller copy" in message


def _png_declaring(tmp_path: Path, name: str, width: int, height: int) -> Path:
    """A small valid PNG whose IHDR chunk is rewritten to declare width x height (CRC fixed)."""
    small = tmp_path / "small.png"
    Image.new("L", (64, 64), 100).save(small)
    data = bytearray(small.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def test_header_declaring_a_gigantic_image_is_refused(tmp_path: Path) -> None:
    # 20000x20000 = 400 MP: Pillow itself refuses it on open (decompression bomb).
    message = _load_error(_png_declaring(tmp_path, "bomb.png", 20000, 20000))
    assert "bomb.png" in message
    assert "too large" in message


def test_header_declaring_a_gigantic_image_gives_the_same_advice(tmp_path: Path) -> None:
    message = _load_error(_png_declaring(tmp_path, "bomb.png", 20000, 20000))
    assert "Save a smaller copy" in message


def test_tiny_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "icon.png"
    Image.new("RGB", (20, 20), (200, 150, 120)).save(path)
    message = _load_error(path)
    assert "icon.png" in message
    assert "20x20" in message
    assert "too small" in message


def test_one_thin_side_is_enough_to_refuse(tmp_path: Path) -> None:
    path = tmp_path / "strip.png"
    Image.new("RGB", (200, 31), (200, 150, 120)).save(path)
    assert "200x31" in _load_error(path)


def test_smallest_accepted_size(tmp_path: Path) -> None:
    path = tmp_path / "small_ok.png"
    Image.new("RGB", (32, 32), (200, 150, 120)).save(path)
    _assert_rgb(load_image(path), 32, 32)


# --- colour modes -----------------------------------------------------------------------------


def test_grayscale_is_expanded_to_three_equal_channels(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))  # 48x64 horizontal ramp
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    image = load_image(path)
    _assert_rgb(image, 48, 64)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], gray)


def test_palette_image_uses_its_palette_colours(tmp_path: Path) -> None:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (220, 30, 40)
    rgb[:, 32:] = (10, 90, 200)
    path = tmp_path / "palette.png"
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    assert Image.open(path).mode == "P"
    image = load_image(path)
    _assert_rgb(image, 48, 64)
    np.testing.assert_array_equal(image[10, 5], (220, 30, 40))
    np.testing.assert_array_equal(image[10, 60], (10, 90, 200))


def test_palette_transparency_is_composited_on_mid_grey(tmp_path: Path) -> None:
    img = Image.new("P", (64, 48), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * (254 * 3))
    img.paste(1, (32, 0, 64, 48))  # right half: palette index 1 (green), left: 0 (transparent)
    path = tmp_path / "palette_alpha.png"
    img.save(path, transparency=0)
    image = load_image(path)
    _assert_rgb(image, 48, 64)
    np.testing.assert_array_equal(image[20, 5], (128, 128, 128))
    np.testing.assert_array_equal(image[20, 50], (0, 255, 0))


def test_rgba_transparency_is_composited_on_mid_grey(tmp_path: Path) -> None:
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[:, :, 0] = 255  # red everywhere
    rgba[:, :20, 3] = 0  # fully transparent
    rgba[:, 20:40, 3] = 128  # half transparent
    rgba[:, 40:, 3] = 255  # opaque
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    image = load_image(path)
    _assert_rgb(image, 48, 64)
    np.testing.assert_array_equal(image[10, 5], (128, 128, 128))
    np.testing.assert_array_equal(image[10, 50], (255, 0, 0))
    half = image[10, 30].astype(int)
    assert abs(half[0] - 191) <= 2 and abs(half[1] - 64) <= 2 and abs(half[2] - 64) <= 2, half


def test_16_bit_grayscale_is_scaled_to_8_bit(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    path = tmp_path / "scan16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode == "I;16"
    image = load_image(path)
    _assert_rgb(image, 48, 64)
    row = image[5, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0), "the ramp must stay monotonic"
    np.testing.assert_allclose(row, np.linspace(0, 255, 64), atol=1.01)
    np.testing.assert_array_equal(image[:, :, 0], image[:, :, 1])
    np.testing.assert_array_equal(image[:, :, 0], image[:, :, 2])


# --- geometry -------------------------------------------------------------------------------


def test_exif_orientation_6_is_applied(tmp_path: Path) -> None:
    stored = np.full((60, 120, 3), 255, np.uint8)  # stored landscape 120x60, white
    stored[:20, :20] = (255, 0, 0)  # red block at the stored top-left corner
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    image = load_image(path)
    _assert_rgb(image, 120, 60)  # displayed portrait: width and height swapped
    top_right = image[5:15, 45:55].reshape(-1, 3).mean(axis=0)
    top_left = image[5:15, 5:15].reshape(-1, 3).mean(axis=0)
    assert top_right[0] > 200 and top_right[1] < 60 and top_right[2] < 60, top_right
    assert top_left.min() > 200, f"top-left should be white after rotation, got {top_left}"


@pytest.mark.parametrize(
    ("size", "expected"),
    [((6000, 3000), (4096, 2048)), ((3000, 8000), (1536, 4096))],
    ids=["landscape", "portrait"],
)
def test_large_image_is_downscaled_keeping_its_aspect(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    size: tuple[int, int],
    expected: tuple[int, int],
) -> None:
    img = Image.new("RGB", size, (90, 120, 150))
    img.paste((250, 20, 20), (0, 0, size[0] // 2, size[1] // 2))  # red top-left quadrant
    path = tmp_path / "large.jpg"
    img.save(path, quality=90)
    with caplog.at_level(logging.WARNING, logger="engine.capture.image_file"):
        image = load_image(path)
    exp_w, exp_h = expected
    _assert_rgb(image, exp_h, exp_w)
    assert max(image.shape[:2]) == MAX_SIDE
    assert image.shape[1] / image.shape[0] == pytest.approx(size[0] / size[1], rel=1e-3)
    # the content is scaled, not cropped: the red quadrant still covers the top-left quarter
    assert image[exp_h // 4, exp_w // 4, 0] > 200 and image[exp_h // 4, exp_w // 4, 2] < 60
    assert image[3 * exp_h // 4, 3 * exp_w // 4, 0] < 120
    assert f"downscaled to {exp_w}x{exp_h}" in caplog.text
    assert "large.jpg" in caplog.text


def test_image_at_max_side_is_kept_as_is(tmp_path: Path) -> None:
    path = tmp_path / "edge.png"
    Image.new("L", (MAX_SIDE, 100), 77).save(path)
    image = load_image(path)
    _assert_rgb(image, 100, MAX_SIDE)
    assert np.all(image == 77)


@pytest.mark.parametrize("name", ["mona_lisa.jpg", "grace_hopper.jpg", "eileen_collins.png"])
def test_bundled_portraits_load_at_their_size(name: str) -> None:
    with Image.open(PORTRAITS / name) as img:
        width, height = img.size
    _assert_rgb(load_image(PORTRAITS / name), height, width)
