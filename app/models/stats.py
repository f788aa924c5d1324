"""The numbers in the status bar: FPS, end-to-end latency, per-stage ms, device and compute."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.models.observable import Event
from engine.api import LiveFrame, StageTimings

REFRESH_S = 0.5  # the bar changes at most this often (readable, and cheap)
SMOOTHING = 0.2  # exponential moving average weight of each new frame

# (StageTimings field, short label) in pipeline order.
STAGES = (
    ("landmarks_ms", "landmarks"),
    ("motion_ms", "motion"),
    ("flow_ms", "flow"),
    ("warp_ms", "warp"),
    ("warp_net_ms", "warp net"),
    ("fusion_ms", "fusion"),
    ("enhance_ms", "enhancer"),
    ("paste_ms", "paste"),
)


@dataclass(frozen=True)
class Stats:
    fps: float = 0.0
    latency_ms: float = 0.0
    stages: tuple[tuple[str, float], ...] = ()
    engine_ms: float = 0.0
    device: str = ""
    compute: str = ""
    note: str = ""

    def stages_text(self) -> str:
        return " · ".join(f"{name} {ms:.1f}" for name, ms in self.stages)


class StatsModel:
    """`changed` fires with a new Stats at most every REFRESH_S (clock injectable)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next = 0.0
        self._latency = 0.0
        self._stage_ms: dict[str, float] = {}
        self.stats = Stats()
        self.changed: Event[Stats] = Event()

    def frame(self, live: LiveFrame) -> None:
        timings: StageTimings = live.output.timings
        first = not self._stage_ms
        for name in (*StageTimings.stage_names(),):
            value = float(getattr(timings, name))
            old = self._stage_ms.get(name, value)
            self._stage_ms[name] = value if first else old + SMOOTHING * (value - old)
        self._latency = (
            live.latency_ms
            if first
            else self._latency + SMOOTHING * (live.latency_ms - self._latency)
        )
        now = self._clock()
        if now < self._next:
            return
        self._next = now + REFRESH_S
        stages = tuple(
            (label, self._stage_ms[field]) for field, label in STAGES if self._stage_ms[field] > 0
        )
        self._publish(
            Stats(
                live.fps,
                self._latency,
                stages,
                self._stage_ms["total_ms"],
                self.stats.device,
                self.stats.compute,
                self.stats.note,
            )
        )

    def compute(self, device: str, compute: str, note: str) -> None:
        s = self.stats
        self._publish(Stats(s.fps, s.latency_ms, s.stages, s.engine_ms, device, compute, note))

    def _publish(self, stats: Stats) -> None:
        self.stats = stats
        self.changed.emit(stats)
