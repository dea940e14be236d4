"""When to train: every micro-batch, every N requests, on a schedule, or on a drift alarm.

A trigger is a frozen configuration; the mutable part (a drift detector) lives in a state object
that the trainer owns and passes in. Time is counted in requests the agent has observed, and a
trigger is checked once per micro-batch, so its resolution is the micro-batch size.

A trigger's state travels in checkpoints as tensors and plain containers (``state_dict`` /
``load_state_dict``), so that ``torch.load`` reads them with its default ``weights_only=True``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import river
import torch
from river import drift

from driftrec.validation import (
    check_choice,
    check_integer_tuple,
    check_real,
    check_time,
)

__all__ = [
    "DriftAlarm",
    "EveryN",
    "EveryStep",
    "Never",
    "Schedule",
    "Trigger",
    "adwin_state_dict",
    "load_adwin_state_dict",
]


class Trigger(Protocol):
    """Decides, after each micro-batch, whether an update rule runs."""

    @property
    def signal(self) -> str | None:
        """The per-request stream the trigger watches (``"loss"``: the model's prequential
        surprise ``1 - exp(-loss)`` on each request before learning from it; ``"reward"``: the
        observed reward), or None; the trainer computes each watched stream once per
        micro-batch."""
        ...

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

    def state_dict(self, state: Any) -> Any:
        """``state`` as tensors and plain containers (references are fine: the agent
        deep-copies)."""
        ...

    def load_state_dict(self, saved: Any) -> Any:
        """The state that :meth:`state_dict` described."""
        ...


def _check_no_signal(trigger: Any) -> None:
    if trigger.signal is not None:
        raise ValueError(
            f"{type(trigger).__name__} watches no signal: signal must be None, got "
            f"{trigger.signal!r}"
        )


class _Stateless:
    """State handling of the triggers that keep none."""

    def init_state(self) -> None:
        return None

    def state_dict(self, state: None) -> None:
        return None

    def load_state_dict(self, saved: None) -> None:
        return None


@dataclass(frozen=True)
class Never(_Stateless):
    """Never fires (a model that only pretrains)."""

    signal: str | None = None

    def __post_init__(self) -> None:
        _check_no_signal(self)

    def fires(
        self, state: None, seen_before: int, seen_after: int, values: np.ndarray | None
    ) -> bool:
        return False


@dataclass(frozen=True)
class EveryStep(_Stateless):
    """Fires on every micro-batch (online learning)."""

    signal: str | None = None

    def __post_init__(self) -> None:
        _check_no_signal(self)

    def fires(
        self, state: None, seen_before: int, seen_after: int, values: np.ndarray | None
    ) -> bool:
        return True


@dataclass(frozen=True)
class EveryN(_Stateless):
    """Fires each time the count of observed requests passes a multiple of ``n`` (in [1,
    10**15]; at least the micro-batch, see :meth:`check_micro_batch`)."""

    n: int
    signal: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_time("n", self.n))
        _check_no_signal(self)

    def check_micro_batch(self, micro_batch: int) -> None:
        """Refuse a period shorter than the micro-batch: the trigger is checked once per
        micro-batch, so it would fire on every one (``every=10`` with ``micro_batch=256``
        retrained once per 256 requests, not 25 times)."""
        if self.n < micro_batch:
            raise ValueError(
                f"a trigger every {self.n} requests is checked once per micro-batch of "
                f"{micro_batch} and would fire once per micro-batch: use every >= "
                f"micro_batch={micro_batch}, or a micro_batch <= {self.n}"
            )

    def fires(
        self, state: None, seen_before: int, seen_after: int, values: np.ndarray | None
    ) -> bool:
        return seen_before // self.n < seen_after // self.n


@dataclass(frozen=True)
class Schedule(_Stateless):
    """Fires when the count of observed requests passes one of ``at`` (request counts, each
    >= 1)."""

    at: tuple[int, ...]
    signal: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", check_integer_tuple("at", self.at, minimum=1))
        _check_no_signal(self)

    def fires(
        self, state: None, seen_before: int, seen_after: int, values: np.ndarray | None
    ) -> bool:
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
    stay still (and cheap) while it is not. A change detected during the hold (the world still
    drifting, or the model still catching up with it) extends the hold by ``hold`` requests
    from there (``state["extended_at"]``); only changes detected while the model is fixed are
    alarms (``state["alarm_at"]``).

    When the hold runs out, a fresh detector starts watching the now fixed model. Values served
    while the model was learning must not be the reference of the next alarm: the signal moves
    with the learning itself (the reward of the ``drift_triggered`` preset rises by about 0.025
    over the hold after its warm-up), and a detector that kept those values raised alarms for
    the agent's own improvement, thousands of requests after learning had stopped (e.g. at
    54,016 requests, 6,000 before a sudden shift, in the preset's test before this reset). Each
    new detector waits ``grace_period`` values before it may alarm.

    The reward is fed as ``min(reward / reward_scale, 1)`` (negative rewards as 0): with clicks
    (0 or 1) and the default ``reward_scale=1`` it is the reward itself. An engagement reward
    (log-normal, mean 1, values up to hundreds) breaks ADWIN's bound: fed raw, a stationary
    engagement world raised 7 alarms in 44,800 requests. Give ``reward_scale`` a bound that
    the reward rarely exceeds (or use ``signal="loss"``); the trigger warns once when a reward
    above ``reward_scale`` is clipped.

    Args:
        signal: ``"loss"`` or ``"reward"``.
        delta: ADWIN's confidence, in (0, 1); smaller means fewer false alarms and later
            detection.
        hold: requests after an alarm (or an extension) during which the trigger keeps
            firing, in [0, 10**15].
        min_gap: requests to wait after an alarm before another may fire, in [0, 10**15].
        grace_period: values a (new) detector sees before it may raise an alarm, in [1,
            10**15].
        reward_scale: the reward that maps to 1 (``signal="reward"``), in (0, 10**6].
        start: the detector watches the micro-batches that begin at or after this many
            requests, in [0, 10**15]: when a warm-up model starts serving (the
            ``drift_triggered`` preset), so that the jump of the reward when the warm-up model
            replaces the untrained one is not taken for drift.
    """

    signal: str = "loss"
    delta: float = 0.002
    hold: int = 0
    min_gap: int = 0
    grace_period: int = 1_000
    reward_scale: float = 1.0
    start: int = 0

    def __post_init__(self) -> None:
        check_choice("signal", self.signal, ("loss", "reward"))
        delta = check_real("delta", self.delta, low=0.0, high=1.0, low_open=True, high_open=True)
        object.__setattr__(self, "delta", delta)
        for name in ("hold", "min_gap", "start"):
            object.__setattr__(self, name, check_time(name, getattr(self, name), minimum=0))
        grace = check_time("grace_period", self.grace_period, minimum=1)
        object.__setattr__(self, "grace_period", grace)
        scale = check_real("reward_scale", self.reward_scale, low=0.0, high=1e6, low_open=True)
        object.__setattr__(self, "reward_scale", scale)

    def _detector(self) -> drift.ADWIN:
        return drift.ADWIN(delta=self.delta, grace_period=self.grace_period)

    def init_state(self) -> dict[str, Any]:
        return {
            "detector": self._detector(),
            "learning": False,  # an alarm's hold is running
            "hold_until": None,  # the trigger fires while fewer requests than this were seen
            "last_alarm": None,
            "alarms": 0,
            "alarm_at": [],
            "extended_at": [],
            "warned": False,  # a reward above reward_scale was clipped (and warned about)
        }

    def fires(
        self,
        state: dict[str, Any],
        seen_before: int,
        seen_after: int,
        values: np.ndarray | None,
    ) -> bool:
        if values is None:
            raise ValueError("DriftAlarm needs the signal's values for every micro-batch")
        if seen_before < self.start:
            return False  # not watching yet
        until = state["hold_until"]
        holding = until is not None and seen_after < until
        if state["learning"] and not holding:
            # The hold ran out: from here the model is fixed, and it is watched afresh.
            state["detector"], state["learning"] = self._detector(), False
        detector = state["detector"]
        detected = False
        values = np.asarray(values, dtype=np.float64)
        if self.signal == "reward":
            values = self._scaled(state, values)
        for value in values.tolist():
            detector.update(value)
            detected = detected or detector.drift_detected
        if detected and state["learning"]:
            # Still changing while the rule learns (the world, or the model catching up with
            # it): keep learning.
            state["hold_until"] = seen_after + self.hold
            state["extended_at"].append(seen_after)
            return True
        last = state["last_alarm"]
        if detected and (last is None or seen_after - last >= self.min_gap):
            state["last_alarm"] = seen_after
            state["alarms"] += 1
            state["alarm_at"].append(seen_after)
            state["learning"], state["hold_until"] = True, seen_after + self.hold
            return True
        return holding

    def _scaled(self, state: dict[str, Any], reward: np.ndarray) -> np.ndarray:
        """The reward in [0, 1]: ``reward / reward_scale``, clipped (with one warning)."""
        if self.reward_scale != 1.0:
            reward = reward / self.reward_scale
        if reward.size and (reward.max() > 1.0 or reward.min() < 0.0):
            if not state.get("warned"):
                state["warned"] = True
                warnings.warn(
                    f"DriftAlarm(signal='reward') clipped rewards up to {reward.max():.3g} x "
                    f"reward_scale={self.reward_scale:g} into [0, 1] (ADWIN assumes values in "
                    "[0, 1]); for an engagement reward give reward_scale a bound it rarely "
                    "exceeds, or use signal='loss'",
                    RuntimeWarning,
                    stacklevel=2,
                )
            reward = np.clip(reward, 0.0, 1.0)
        return reward

    def state_dict(self, state: dict[str, Any]) -> dict[str, Any]:
        """The state with the detector as :func:`adwin_state_dict` describes it."""
        return {**state, "detector": adwin_state_dict(state["detector"])}

    def load_state_dict(self, saved: dict[str, Any]) -> dict[str, Any]:
        detector = load_adwin_state_dict(saved["detector"])
        if (detector.delta, detector.grace_period) != (self.delta, self.grace_period):
            raise ValueError(
                f"the saved detector has delta={detector.delta}, grace_period="
                f"{detector.grace_period}; this trigger has delta={self.delta}, grace_period="
                f"{self.grace_period}"
            )
        return {**saved, "detector": detector}


_ADWIN_PARAMETERS = ("delta", "clock", "max_buckets", "min_window_length", "grace_period")


def adwin_state_dict(detector: drift.ADWIN) -> dict[str, Any]:
    """A ``river.drift.ADWIN`` as tensors and plain values, faithfully: its parameters, whether
    its last update detected a drift (river resets the window on the next update then), and
    its window in river's own serialised form (the bucket structure, totals and variances
    that river's Rust ``AdaptiveWindowing`` pickles through ``__getstate__``) as a uint8
    tensor. ``width``, ``total``, ``variance`` and ``n_detections`` are kept readable too, and
    :func:`load_adwin_state_dict` checks the restored window against them."""
    window = detector._helper.__getstate__()
    return {
        **{name: getattr(detector, name) for name in _ADWIN_PARAMETERS},
        "drift_detected": bool(detector.drift_detected),
        "window": torch.frombuffer(bytearray(window), dtype=torch.uint8),
        "width": int(detector.width),
        "total": float(detector.total),
        "variance": float(detector.variance),
        "n_detections": int(detector.n_detections),
        "river_version": river.__version__,
    }


def load_adwin_state_dict(saved: dict[str, Any]) -> drift.ADWIN:
    """The ``river.drift.ADWIN`` that :func:`adwin_state_dict` described: it continues exactly
    as the saved one would (same alarms on the same values).

    Raises:
        ValueError: the window cannot be restored by this river version (the check of width,
            total, variance and detections fails).
    """
    detector = drift.ADWIN(**{name: saved[name] for name in _ADWIN_PARAMETERS})
    try:
        detector._helper.__setstate__(saved["window"].numpy().tobytes())
        restored = (
            int(detector.width),
            float(detector.total),
            float(detector.variance),
            int(detector.n_detections),
        )
    except Exception as error:  # river's Rust side raises its own exception types
        raise ValueError(
            f"cannot restore the ADWIN window saved with river {saved['river_version']} in river "
            f"{river.__version__}: {error}"
        ) from error
    expected = (saved["width"], saved["total"], saved["variance"], saved["n_detections"])
    if restored != expected:
        raise ValueError(
            f"the ADWIN window saved with river {saved['river_version']} reads back differently "
            f"in river {river.__version__} (width, total, variance, detections {restored} != "
            f"{expected}); load the checkpoint with river {saved['river_version']}"
        )
    detector._drift_detected = bool(saved["drift_detected"])
    return detector
