"""The only place that picks the compute device and reports the compile backends available."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from dataclasses import dataclass

from engine.paths import is_frozen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceReport:
    """torch_version: None when torch is missing. device: "cuda" or "cpu".
    backends: compile backends usable here, best first ("tensorrt", "torch.compile", "eager").
    """

    torch_version: str | None
    device: str
    device_name: str
    cuda_version: str | None
    backends: tuple[str, ...]


def torch_compile_blocker(cuda: bool) -> str | None:
    """Why torch.compile cannot run here, or None when it can. It generates C++ (CPU) or Triton
    (CUDA) code at run time against torch's headers: the standalone app (build.spec) ships neither
    the headers nor a compiler, so it runs the networks eagerly."""
    if is_frozen():
        return "the standalone app cannot run torch.compile (no C++ toolchain or torch headers)"
    if not cuda and not (shutil.which("gcc") or shutil.which("cc")):
        return "torch.compile on CPU needs a C compiler (gcc/cc) on PATH"
    return None


def probe_device() -> DeviceReport:
    if importlib.util.find_spec("torch") is None:
        return DeviceReport(None, "cpu", "CPU (torch not installed)", None, ())
    import torch

    cuda = torch.cuda.is_available()
    backends = []
    if cuda and importlib.util.find_spec("torch_tensorrt") is not None:
        backends.append("tensorrt")
    if hasattr(torch, "compile") and torch_compile_blocker(cuda) is None:
        backends.append("torch.compile")
    backends.append("eager")
    return DeviceReport(
        torch_version=torch.__version__,
        device="cuda" if cuda else "cpu",
        device_name=torch.cuda.get_device_name(0) if cuda else "CPU",
        cuda_version=torch.version.cuda if cuda else None,
        backends=tuple(backends),
    )
