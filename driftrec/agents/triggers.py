"""When to train: every micro-batch, every N requests, on a schedule, or on a drift alarm.

A trigger is a frozen configuration; the mutable part (a drift detector) lives in a state object
that the trainer owns and passes in. Time is counted in requests the agent has observed, and a
trigger is checked once per micro-batch, so its resolution is the micro-batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from river import drift

__all__ = ["DriftAlarm", "EveryN", "EveryStep", "Never", "Schedule", "Trigger"]


class Trigger(Protocol):
    """Decides, after each micro-batch, whether an update rule runs.

    Attributes:
        signal: the per-request stream the trigger watches (``"loss"``: the model's
            prequential surprise ``1 - exp(-loss)`` on each request before learning from it;
            ``"reward"``: the observed reward), or None.
    """

    signal: str | None

    def init_state(self) -> Any:
        """A fresh state (None for stateless triggers)."""
        ...

    def fires(
        self, state: Any, seen_before: int, seen_after: int, values: np.ndarray | None
    ) -> bool:
        """Whether to update now that ``seen_after`` requests have been observed (there were
        ``seen_before`` at the previous check); ``values`` (n,) is this micro-batch's signal,
        one value per request. May update ``state`` (a detector) in place."""
        ...


@dataclass(frozen=True)
class Never:
    """Never fires (a model that only pretrains)."""

    signal: str | None = None

    def init_state(self) -> None:
        return None

    def fires(self, state, seen_before, seen_after, values) -> bool:
        return False


@dataclass(frozen=True)
class EveryStep:
    """Fires on every micro-batch (online learning)."""

    signal: str | None = None

    def init_state(self) -> None:
        return None

    def fires(self, state, seen_before, seen_after, values) -> bool:
        return True


@dataclass(frozen=True)
class EveryN:
    """Fires each time the count of observed requests passes a multiple of ``n``."""

    n: int
    signal: str | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"EveryN needs n >= 1 requests, got {self.n}")

    def init_state(self) -> None:
        return None

    def fires(self, state, seen_before, seen_after, values) -> bool:
        return seen_before // self.n < seen_after // self.n


@dataclass(frozen=True)
class Schedule:
    """Fires when the count of observed requests passes one of ``at`` (request counts)."""

    at: tuple[int, ...]
    signal: str | None = None

    def init_state(self) -> None:
        return None

    def fires(self, state, seen_before, seen_after, values) -> bool:
        return any(seen_before < t <= seen_after for t in self.at)


@dataclass(frozen=True)
class DriftAlarm:
    """Fires when ADWIN (Bifet & Gavalda 2007, "Learning from time-changing data with adaptive
    windowing", SDM; ``river.drift.ADWIN``) detects a change in the mean of the watched stream,
    fed one value per request (ADWIN's bound assumes values in [0, 1]; micro-batch means would
    make it detect hundreds of micro-batches late): the model's prequential surprise
    ``1 - exp(-loss)`` (``signal="loss"``) or the observed reward (``signal="reward"``).
    Detection-then-adaptation is the "informed" family of drift adaptation (Gama et al. 2014,
    "A survey on concept drift adaptation", ACM CSUR).

    After an alarm the trigger keeps firing on every micro-batch for ``hold`` requests (0: on
    the alarm's micro-batch only), so that a rule can adapt while the stream is changing and
    stay still (and cheap) while it is not.

    Args:
        signal: ``"loss"`` or ``"reward"``.
        delta: ADWIN's confidence; smaller means fewer false alarms and later detection.
        hold: requests after an alarm during which the trigger keeps firing.
        min_gap: requests to wait after an alarm before another may fire.
        grace_period: values ADWIN sees before it may raise an alarm.
    """

    signal: str = "loss"
    delta: float = 0.002
    hold: int = 0
    min_gap: int = 0
    grace_period: int = 1_000

    def __post_init__(self) -> None:
        if self.signal not in ("loss", "reward"):
            raise ValueError(f"signal must be 'loss' or 'reward', got {self.signal!r}")
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")
        if self.hold < 0 or self.min_gap < 0:
            raise ValueError(f"hold and min_gap must be >= 0, got {self.hold}, {self.min_gap}")

    def init_state(self) -> dict[str, Any]:
        detector = drift.ADWIN(delta=self.delta, grace_period=self.grace_period)
        return {"detector": detector, "last_alarm": None, "alarms": 0, "alarm_at": []}

    def fires(self, state, seen_before, seen_after, values) -> bool:
        if values is None:
            raise ValueError("DriftAlarm needs the signal's values for every micro-batch")
        detector = state["detector"]
        detected = False
        for value in np.asarray(values, dtype=np.float64).tolist():
            detector.update(value)
            detected = detected or detector.drift_detected
        last = state["last_alarm"]
        if detected and (last is None or seen_after - last >= self.min_gap):
            state["last_alarm"] = seen_after
            state["alarms"] += 1
            state["alarm_at"].append(seen_after)
            return True
        return last is not None and seen_after - last < self.hold
