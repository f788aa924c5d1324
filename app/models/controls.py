"""The animation controls: expression strength, head-pose strength, smoothing."""

from __future__ import annotations

from app.models.observable import Event
from engine.api import Controls

STRENGTH_RANGE = (0.0, 2.0)
SMOOTHING_RANGE = (0.0, 1.0)


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return float(min(max(value, bounds[0]), bounds[1]))


class ControlsModel:
    """Values are clamped to their ranges; `changed` carries the new frozen snapshot."""

    def __init__(self, controls: Controls | None = None) -> None:
        self._controls = controls or Controls()
        self.changed: Event[Controls] = Event()

    def snapshot(self) -> Controls:
        return self._controls

    @property
    def expression(self) -> float:
        return self._controls.expression_strength

    @expression.setter
    def expression(self, value: float) -> None:
        self._set(Controls(_clamp(value, STRENGTH_RANGE), self.pose, self.smoothing))

    @property
    def pose(self) -> float:
        return self._controls.pose_strength

    @pose.setter
    def pose(self, value: float) -> None:
        self._set(Controls(self.expression, _clamp(value, STRENGTH_RANGE), self.smoothing))

    @property
    def smoothing(self) -> float:
        return self._controls.smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        self._set(Controls(self.expression, self.pose, _clamp(value, SMOOTHING_RANGE)))

    def reset(self) -> None:
        self._set(Controls())

    def _set(self, controls: Controls) -> None:
        if controls != self._controls:
            self._controls = controls
            self.changed.emit(controls)
