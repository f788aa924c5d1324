"""The one place that compiles networks: TensorRT, torch.compile or eager, best first.

`compile_graph` turns a module plus fixed-shape example inputs into a `CompiledGraph`. Under
"auto" it tries the backends `probe_device()` reports, in order, and falls back (logged and
recorded in the report) when one fails; an explicitly requested backend that fails raises.

Graphs are static: a call with other shapes, dtypes or devices raises ValueError rather than
silently recompiling. Calls run under torch.inference_mode(). Dynamo also guards on strides and
on whether a tensor is an inference tensor, so such inputs are copied to the compiled layout.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.device import probe_device, torch_compile_blocker
from engine.errors import CompileError
from engine.paths import cache_dir as user_cache_dir

log = logging.getLogger(__name__)

BACKENDS = ("tensorrt", "torch.compile", "eager")

Inputs = tuple[torch.Tensor, ...]
# Rebuilds the runnable graph from the module's new weights (TensorRT refit).
Rebind = Callable[[nn.Module, Inputs, Callable[..., Any]], Callable[..., Any]]
_INSTALL_TRT = "install it with `pip install visage[tensorrt]`"


@dataclass(frozen=True)
class CompileReport:
    """How a graph was made. seconds: what compile_graph took (warm-up run and failed attempts
    included). fallbacks: one line per backend that failed under "auto", with the cause.
    """

    backend: str
    requested: str
    device: str
    dtype: str
    seconds: float
    fallbacks: tuple[str, ...] = ()

    def summary(self) -> str:
        line = f"{self.backend} on {self.device} ({self.dtype}), ready in {self.seconds:.1f} s"
        if self.requested not in ("auto", self.backend):
            line += f" (requested {self.requested})"
        if self.fallbacks:
            line += "; fell back after: " + "; ".join(self.fallbacks)
        return line


@dataclass(frozen=True)
class _Spec:
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    stride: tuple[int, ...]

    def describe(self) -> str:
        return f"{tuple(self.shape)} {str(self.dtype).removeprefix('torch.')} on {self.device}"


def _describe(t: object) -> str:
    if not isinstance(t, torch.Tensor):
        return type(t).__name__
    return f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')} on {t.device}"


@dataclass
class CompiledGraph:
    """A callable graph for fixed-shape inputs, plus how it was made.

    Call the graph itself: it checks the inputs and runs `run` (the bare backend callable) under
    torch.inference_mode(); calling `run` directly skips both and may make dynamo recompile.
    """

    module: nn.Module
    run: Callable[..., Any]
    report: CompileReport
    _specs: tuple[_Spec, ...] = field(default=(), repr=False)
    _examples: Inputs = field(default=(), repr=False)
    _rebind: Rebind | None = field(default=None, repr=False)  # None: `run` reads `module` as is

    def __call__(self, *inputs: torch.Tensor) -> Any:
        if len(inputs) != len(self._specs) or any(
            not isinstance(t, torch.Tensor)
            or t.shape != s.shape
            or t.dtype != s.dtype
            or t.device != s.device
            for t, s in zip(inputs, self._specs, strict=False)
        ):
            expected = ", ".join(s.describe() for s in self._specs)
            given = ", ".join(_describe(t) for t in inputs)
            raise ValueError(
                f"this graph was compiled for inputs [{expected}], got [{given}]; "
                "compile another graph for other shapes"
            )
        with torch.inference_mode():
            return self.run(*(_conform(t, s) for t, s in zip(inputs, self._specs, strict=True)))

    def refit(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load new weights (e.g. after personalization) without recompiling the graph."""
        own = self.module.state_dict()
        problems = [f"missing {k}" for k in own.keys() - state_dict.keys()]
        problems += [f"unexpected {k}" for k in state_dict.keys() - own.keys()]
        problems += [
            f"{k}: {tuple(state_dict[k].shape)} instead of {tuple(v.shape)}"
            for k, v in own.items()
            if k in state_dict and state_dict[k].shape != v.shape
        ]
        if problems:
            raise CompileError(f"the new weights do not fit this network: {', '.join(problems)}")
        self.module.load_state_dict(state_dict)  # copies in place: torch.compile sees new values
        if self._rebind is not None:
            started = time.perf_counter()
            try:
                self.run = self._rebind(self.module, self._examples, self.run)
            except Exception as exc:
                raise CompileError(
                    f"{self.report.backend} could not load the new weights ({_cause(exc)}); "
                    "compile the network again"
                ) from exc
            log.info("refitted %s weights in %.1f s", self.report.backend, _since(started))


def _conform(t: torch.Tensor, spec: _Spec) -> torch.Tensor:
    """Copy `t` to the compiled layout when dynamo's guards would otherwise recompile."""
    if t.stride() != spec.stride or not t.is_inference():
        return t.clone(memory_format=torch.contiguous_format)  # in inference mode: inference
    return t


def _since(started: float) -> float:
    return time.perf_counter() - started


def _cause(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= 240 else text[:237] + "..."


def _unavailable(backend: str, device: str, usable: tuple[str, ...]) -> str | None:
    """Why `backend` cannot be used here, or None when it can."""
    if backend == "tensorrt":
        if device != "cuda":
            return "TensorRT needs a CUDA GPU and none is in use here"
        if importlib.util.find_spec("torch_tensorrt") is None:
            return f"torch-tensorrt is not installed; {_INSTALL_TRT}"
    if backend == "torch.compile" and backend not in usable:
        return torch_compile_blocker(device == "cuda") or "torch.compile is not available here"
    return None


def _build_eager(
    module: nn.Module, examples: Inputs, half: bool, cache: Path
) -> tuple[Callable[..., Any], Rebind | None]:
    return module, None


def _build_torch_compile(
    module: nn.Module, examples: Inputs, half: bool, cache: Path
) -> tuple[Callable[..., Any], Rebind | None]:
    on_cpu = all(t.device.type == "cpu" for t in examples)
    if on_cpu and getattr(module, ATEN_GRID_SAMPLE, False):
        backend = _inductor_with_aten_grid_sample
        return torch.compile(module, fullgraph=True, dynamic=False, backend=backend), None
    return torch.compile(module, fullgraph=True, dynamic=False), None


# A module whose class sets this attribute to True has its grid_sample calls run by ATen's own
# kernel when torch.compile targets the CPU: inductor otherwise decomposes grid_sample and fuses
# it with what feeds it, which for the warp graph took 12.4 ms per frame on one thread against
# 8.9 ms with ATen's kernel (for the fusion graph, 16.1 against 17.4: it does not set it).
ATEN_GRID_SAMPLE = "aten_grid_sample_on_cpu"


@torch.library.custom_op("visage::grid_sample", mutates_args=())
def _grid_sample_op(
    x: torch.Tensor, grid: torch.Tensor, mode: str, padding_mode: str, align_corners: bool
) -> torch.Tensor:
    """F.grid_sample as an operator inductor cannot see into (it calls it as is).
    x: (B, C, H, W); grid: (B, Ho, Wo, 2) in [-1, 1] -> (B, C, Ho, Wo)."""
    return torch.nn.functional.grid_sample(
        x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners
    )


@_grid_sample_op.register_fake
def _grid_sample_shape(
    x: torch.Tensor, grid: torch.Tensor, mode: str, padding_mode: str, align_corners: bool
) -> torch.Tensor:
    return x.new_empty((x.shape[0], x.shape[1], grid.shape[1], grid.shape[2]))


_GRID_SAMPLE_ARGS = ("input", "grid", "mode", "padding_mode", "align_corners")
_GRID_SAMPLE_DEFAULTS = {"mode": "bilinear", "padding_mode": "zeros", "align_corners": False}


def opaque_grid_sample(gm: torch.fx.GraphModule) -> int:
    """Rewrite the F.grid_sample calls of a dynamo graph to `visage::grid_sample` (in place).
    The rewritten graph also hashes differently, so compile caches keep the two apart.
    Returns how many calls were rewritten."""
    count = 0
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target is not torch.nn.functional.grid_sample:
            continue
        given = dict(zip(_GRID_SAMPLE_ARGS, node.args, strict=False)) | dict(node.kwargs)
        args = [given.get(name, _GRID_SAMPLE_DEFAULTS.get(name)) for name in _GRID_SAMPLE_ARGS]
        if args[4] is None:
            args[4] = False  # F.grid_sample's own default
        node.target = torch.ops.visage.grid_sample.default
        node.args, node.kwargs = tuple(args), {}
        count += 1
    gm.recompile()
    return count


def _inductor_with_aten_grid_sample(gm: torch.fx.GraphModule, examples: list[Any]) -> Any:
    """torch.compile's inductor backend, with grid_sample left to ATen (see ATEN_GRID_SAMPLE)."""
    from torch._inductor.compile_fx import compile_fx

    opaque_grid_sample(gm)
    return compile_fx(gm, examples)


def _build_tensorrt(
    module: nn.Module, examples: Inputs, half: bool, cache: Path
) -> tuple[Callable[..., Any], Rebind | None]:
    import torch_tensorrt  # optional dependency: imported here only

    compile_fn = torch_tensorrt.dynamo.compile
    params = inspect.signature(compile_fn).parameters
    cache.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "cache_built_engines": True,
        "reuse_cached_engines": True,
        "engine_cache_dir": str(cache),
    }
    # Refittable engines: the flag was renamed across torch-tensorrt releases.
    if "immutable_weights" in params:
        options["immutable_weights"] = False
    else:
        options["make_refittable"] = True
    if half and "enabled_precisions" in params:  # newer releases take the module's own dtype
        options["enabled_precisions"] = {torch.float16}
    if "timing_cache_path" in params:
        options["timing_cache_path"] = str(cache / "timing_cache.bin")

    compiled: Callable[..., Any] = compile_fn(
        torch.export.export(module, examples), list(examples), **options
    )

    def rebind(net: nn.Module, inputs: Inputs, current: Callable[..., Any]) -> Callable[..., Any]:
        from torch_tensorrt.dynamo import refit_module_weights

        exported = torch.export.export(net, inputs)
        refitted: Callable[..., Any] = refit_module_weights(current, exported, inputs)
        return refitted

    return compiled, rebind


_BUILDERS = {
    "tensorrt": _build_tensorrt,
    "torch.compile": _build_torch_compile,
    "eager": _build_eager,
}


def compile_graph(
    module: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    *,
    backend: str = "auto",
    device: str | None = None,
    half: bool | None = None,
    cache_dir: Path | None = None,
) -> CompiledGraph:
    """Compile `module` for inputs shaped like `example_inputs` (moved to `device`, floats cast
    to the compiled dtype). `module` is converted in place: give each graph its own copy.
    half: float16. Default: on CUDA for every backend but eager (so that eager is the float32
    reference); never on CPU unless asked (CPU float16 is slow, but tests use it to check the
    reduced-precision path).
    cache_dir: TensorRT engine cache (default: the user cache's engine_cache folder).
    The first run happens here, so compile failures surface here and not on the first frame.
    """
    if backend != "auto" and backend not in BACKENDS:
        raise CompileError(f"unknown compile backend {backend!r}; use auto or one of {BACKENDS}")
    if not all(isinstance(t, torch.Tensor) for t in example_inputs):
        raise TypeError("example_inputs must be a tuple of tensors")
    report = probe_device()
    device = device or report.device
    if device not in ("cuda", "cpu"):
        raise CompileError(f"unknown device {device!r}; use 'cuda' or 'cpu'")
    if device == "cuda" and report.device != "cuda":
        raise CompileError("CUDA was requested but no CUDA GPU is available to torch here")
    if half is None:
        half = device == "cuda" and backend != "eager"
    dtype = torch.float16 if half else torch.float32
    cache = cache_dir if cache_dir is not None else user_cache_dir() / "engine_cache"

    if backend == "auto":
        candidates = [
            b for b in report.backends if _unavailable(b, device, report.backends) is None
        ]
    else:
        why = _unavailable(backend, device, report.backends)
        if why:
            raise CompileError(f"cannot use the {backend} backend: {why}")
        candidates = [backend]

    with torch.inference_mode(False):  # parameters and examples must stay normal tensors
        module.to(device=device, dtype=dtype).eval()
        examples = tuple(
            t.detach()
            .to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)
            .clone(memory_format=torch.contiguous_format)
            for t in example_inputs
        )
    specs = tuple(_Spec(t.shape, t.dtype, t.device, t.stride()) for t in examples)
    name = type(module).__name__
    fallbacks: list[str] = []
    started = time.perf_counter()  # seconds: what the caller waited, failed attempts included
    for choice in candidates:
        try:
            run, rebind = _BUILDERS[choice](module, examples, half, cache)
            with torch.inference_mode():
                run(*(_conform(t, s) for t, s in zip(examples, specs, strict=True)))
            if device == "cuda":
                torch.cuda.synchronize()
        except Exception as exc:
            if backend != "auto":
                raise CompileError(
                    f"the {choice} backend could not compile {name}: {_cause(exc)}"
                ) from exc
            fallbacks.append(f"{choice} failed: {_cause(exc)}")
            log.warning("%s could not compile %s, trying the next backend: %s", choice, name, exc)
            continue
        done = CompileReport(
            choice,
            backend,
            device,
            str(dtype).removeprefix("torch."),
            _since(started),
            tuple(fallbacks),
        )
        log.info("compiled %s: %s", name, done.summary())
        return CompiledGraph(module, run, done, specs, examples, rebind)
    raise CompileError(f"no backend could run {name}: {'; '.join(fallbacks)}")
