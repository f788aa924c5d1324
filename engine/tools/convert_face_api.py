"""Convert face-api's face recognition weights (dlib's descriptor ResNet) to an IdentityEncoder.

The npm package `@vladmandic/face-api` (MIT) ships dlib's `dlib_face_recognition_resnet_model_v1`
as TensorFlow.js weights: `model/face_recognition_model-weights_manifest.json` lists tensors in
order (name, shape, optional `quantization` {dtype, scale, min}) and the `.bin` shard(s) hold
them back to back. Quantized tensors store integers q with value = q * scale + min; the others
are float32. Filters are (kh, kw, in, out), `fc` is (256, 128). Each conv is followed by an affine
"scale" layer (frozen batch norm), which is folded here into the conv's weight and bias.

Reproduce assets/models/identity/ from the repository root with:

    (cd /tmp && npm pack @vladmandic/face-api@1.7.15)   # -> /tmp/vladmandic-face-api-1.7.15.tgz
    python -m engine.tools.convert_face_api \\
        --package /tmp/vladmandic-face-api-1.7.15.tgz --out assets/models/identity

(that .tgz had sha256 0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031; the
conversion is deterministic: model.safetensors sha256 bf7f2789...c477).

`--package` takes the .tgz from `npm pack` or its unpacked folder (the one holding package.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from engine.models.identity import IdentityConfig, IdentityEncoder
from engine.models.store import count_parameters, save_model

log = logging.getLogger(__name__)

MANIFEST = "model/face_recognition_model-weights_manifest.json"
PACKAGE = "@vladmandic/face-api"
_QUANT_DTYPES: dict[str, Any] = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}
_PLAIN_DTYPES: dict[str, Any] = {"float32": np.float32, "int32": np.int32}

F32 = npt.NDArray[np.float32]


def _package_reader(package: Path) -> tuple[Callable[[str], bytes], str]:
    """A function reading a file of the package by its path (relative to package.json's folder),
    and a description of the source with its sha256 when it is an archive."""
    if package.is_dir():
        root = package / "package" if (package / "package" / "package.json").is_file() else package

        def read_dir(rel: str) -> bytes:
            return (root / rel).read_bytes()

        return read_dir, str(root)
    digest = hashlib.sha256(package.read_bytes()).hexdigest()
    with tarfile.open(package, "r:*") as tar:
        files = {
            m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile() and "/" in m.name
        }

    def read_tar(rel: str) -> bytes:
        if rel not in files:
            raise FileNotFoundError(f"{rel} not in {package}")
        return files[rel]

    return read_tar, f"{package.name} sha256={digest}"


def read_weights(read: Callable[[str], bytes]) -> dict[str, F32]:
    """All tensors of the manifest, dequantized to float32, in tfjs layout."""
    manifest = json.loads(read(MANIFEST))
    folder = str(Path(MANIFEST).parent)
    tensors: dict[str, F32] = {}
    for group in manifest:
        blob = b"".join(read(f"{folder}/{p}") for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = tuple(int(d) for d in spec["shape"])
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            dtype = _QUANT_DTYPES[quant["dtype"]] if quant else _PLAIN_DTYPES[spec["dtype"]]
            nbytes = count * np.dtype(dtype).itemsize
            if offset + nbytes > len(blob):
                raise ValueError(f"{spec['name']}: weight data ends early ({len(blob)} bytes)")
            raw = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
            offset += nbytes
            values = raw.astype(np.float64)
            if quant and quant["dtype"] != "float16":
                values = values * float(quant["scale"]) + float(quant["min"])
            tensors[spec["name"]] = values.astype(np.float32).reshape(shape)
        if offset != len(blob):
            raise ValueError(f"{len(blob) - offset} unread bytes in {group['paths']}")
    return tensors


def _conv(tensors: dict[str, F32], prefix: str) -> tuple[F32, F32]:
    """tfjs conv + scale layer -> folded torch (out, in, kh, kw) weight and (out,) bias."""
    filters = tensors.pop(f"{prefix}/conv/filters").astype(np.float64)  # (kh, kw, in, out)
    bias = tensors.pop(f"{prefix}/conv/bias").astype(np.float64)
    gain = tensors.pop(f"{prefix}/scale/weights").astype(np.float64)
    shift = tensors.pop(f"{prefix}/scale/biases").astype(np.float64)
    weight = np.transpose(filters, (3, 2, 0, 1)) * gain[:, None, None, None]
    return weight.astype(np.float32), (bias * gain + shift).astype(np.float32)


def block_names(config: IdentityConfig) -> list[str]:
    """face-api's names of the residual blocks, in network order."""
    names = []
    for index, (width, count) in enumerate(
        zip(config.stage_channels, config.stage_blocks, strict=True)
    ):
        for j in range(count):
            down = index > 0 and j == 0
            names.append(f"conv{width}_down" if down else f"conv{width}_{j if index else j + 1}")
    if config.final_down:
        names.append(f"conv{config.final_down}_down_out")
    return names


def to_state_dict(tensors: dict[str, F32], config: IdentityConfig) -> dict[str, torch.Tensor]:
    """Map face-api's tensors onto IdentityEncoder's state dict; every tensor must be used."""
    tensors = dict(tensors)
    state: dict[str, torch.Tensor] = {}

    def put(name: str, prefix: str) -> None:
        weight, bias = _conv(tensors, prefix)
        state[f"{name}.weight"] = torch.from_numpy(weight)
        state[f"{name}.bias"] = torch.from_numpy(bias)

    put("stem", f"conv{config.stem_channels}_down")
    for i, prefix in enumerate(block_names(config)):
        put(f"blocks.{i}.conv1", f"{prefix}/conv1")
        put(f"blocks.{i}.conv2", f"{prefix}/conv2")
    state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(tensors.pop("fc").T))
    if tensors:
        raise ValueError(f"unmapped face-api tensors: {sorted(tensors)}")
    return state


def convert(package: Path, out: Path) -> Path:
    """Read the package, build the encoder, check it is complete and save it to `out`."""
    read, source = _package_reader(package)
    meta = json.loads(read("package.json"))
    tensors = read_weights(read)
    config = IdentityConfig()
    model = IdentityEncoder(config)
    state = to_state_dict(tensors, config)
    model.load_state_dict(state, strict=True)
    version = str(meta.get("version"))
    extra = {
        "source": f"npm {meta.get('name')}@{version}",
        "source_file": source,
        "license": str(meta.get("license")),
        "original": "dlib dlib_face_recognition_resnet_model_v1 (Davis E. King)",
        "converted_by": "python -m engine.tools.convert_face_api",
        "note": "uint8-quantized tfjs weights dequantized to float32; affine layers folded",
    }
    save_model(model, out, extra=extra)
    log.info("saved %d parameters from %s to %s", count_parameters(model), extra["source"], out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--package", type=Path, required=True, help="npm pack .tgz or its folder")
    parser.add_argument("--out", type=Path, default=Path("assets/models/identity"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    convert(args.package, args.out)


if __name__ == "__main__":
    main()
