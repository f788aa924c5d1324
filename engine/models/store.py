"""Saving and loading networks: safetensors weights + config.json, loaded strictly.

A network's constructor arguments are one frozen config dataclass (`Net(config)`); that config
is written as config.json beside model.safetensors, so a folder fully describes one network.
Writes are atomic (temporary file + rename): an interrupted save never leaves a half file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from safetensors.torch import load_file, save_file
from torch import nn

from engine.errors import ConfigError

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


M = TypeVar("M", bound=nn.Module)


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; weights are for everyone to read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def config_dict(config: Any) -> dict[str, Any]:
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"a network config must be a dataclass instance, got {type(config)}")
    return dataclasses.asdict(config)


def save_model(model: nn.Module, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write folder/model.safetensors and folder/config.json (with `extra` under "meta")."""
    folder = Path(folder)
    config = getattr(model, "config", None)
    payload = {
        "class": type(model).__name__,
        "config": config_dict(config),
        "meta": extra or {},
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    _atomic_write(folder / WEIGHTS, lambda tmp: save_file(tensors, tmp))

    def write_json(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")

    _atomic_write(folder / CONFIG, write_json)
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise ConfigError(f"no {CONFIG} in {folder}")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return data


def load_model(cls: type[M], config_cls: type, folder: str | Path, device: str = "cpu") -> M:
    """Build `cls(config_cls(**config))` from folder/config.json and load weights strictly.

    Raises ConfigError when the folder is missing files, names another class, or its weights
    do not match the configured network exactly.
    """
    folder = Path(folder)
    data = read_config(folder)
    if data.get("class") != cls.__name__:
        raise ConfigError(f"{folder} holds a {data.get('class')}, not a {cls.__name__}")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    raw = data.get("config", {})
    unknown = set(raw) - fields
    if unknown:
        raise ConfigError(f"{folder}/{CONFIG}: unknown settings {sorted(unknown)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    model = cls(config_cls(**kwargs))
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise ConfigError(f"no {WEIGHTS} in {folder}")
    state = load_file(str(weights), device=device)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"{weights} does not match {cls.__name__}: {exc}") from exc
    return model.to(device).eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
