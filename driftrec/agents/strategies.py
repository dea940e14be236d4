"""Continual-learning strategies: compositions of *what data*, *when*, *which parameters*,
*extra loss terms* and *how to merge*, and the named presets built from them.

A :class:`Strategy` is pure configuration: a tuple of :class:`UpdateRule`s, checked after every
micro-batch in order, plus how much logged data it wants before the stream starts. The
:class:`~driftrec.agents.trainer.Trainer` owns every piece of state (stores, detectors,
optimisers, anchors) and does every mutation.

``make_strategy(name, **params)`` builds a preset and rejects unknown names or parameters with
the list of valid ones; ``STRATEGIES`` is the registry of presets (``@STRATEGIES.register()`` on
a function returning a :class:`Strategy` adds one). A preset checks only the parameters that no
component it builds checks under the same name (``every`` becomes ``EveryN.n``): each value is
checked in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from driftrec.agents.data import (
    Cumulative,
    DataSource,
    FreshData,
    Replay,
    Window,
    check_requests,
)
from driftrec.agents.distillation import Distillation
from driftrec.agents.ewc import EWC
from driftrec.agents.losses import CLICK_LOSSES
from driftrec.agents.merging import Ensemble, Merge, MovingAverage, Replace
from driftrec.agents.optimisers import OPTIMISERS, check_optimiser
from driftrec.agents.scopes import SCOPES
from driftrec.agents.terms import LossTerm
from driftrec.agents.triggers import DriftAlarm, EveryN, EveryStep, Schedule, Trigger
from driftrec.registry import Registry
from driftrec.validation import (
    MAX_LR,
    check_flag,
    check_integer,
    check_names,
    check_optional_integer,
    check_real,
)

__all__ = [
    "OPTIMISERS",
    "STRATEGIES",
    "LearnerConfig",
    "Strategy",
    "UpdateRule",
    "make_strategy",
    "strategy_parameters",
]

MAX_MICRO_BATCH = 10**6
"""The largest micro-batch: requests are held until one is full."""
MAX_EPOCHS = 10**4
"""The most passes over an update's data."""


@dataclass(frozen=True)
class LearnerConfig:
    """How gradient steps are taken (shared by every rule of a strategy)."""

    loss: str = "softmax"
    """Click loss, one of ``driftrec.agents.losses.CLICK_LOSSES``: ``softmax`` (the default; the
    multinomial logit over the slate and no-click, which is how the world's users choose),
    ``bce`` (per shown item), ``mse`` (for an engagement reward)."""
    optimiser: str = "adam"
    """``adam`` (lazy Adam on id tables, Adam elsewhere) or ``sgd``."""
    lr: float = 0.01
    """Learning rate, in (0, 10]."""
    l1: float = 0.0
    """L1 penalty per gradient step on the trained parameters (lazy on id tables), in [0, 10]."""
    l2: float = 0.0
    """L2 penalty per gradient step on the trained parameters (lazy on id tables), in [0, 10]."""
    micro_batch: int = 256
    """Requests gathered before the rules are checked (online learning's granularity), in
    [1, 10**6]. Triggers are checked once per micro-batch, so a periodic rule's ``every`` and a
    window's size must be at least ``micro_batch`` (the agent refuses smaller ones)."""
    batch_size: int = 512
    """Most requests per gradient step, in [1, 10**7]: an update's examples (the fresh
    micro-batch of an online step included) are split into shuffled chunks of at most
    ``batch_size``, so an online step on a micro-batch of 256 with ``batch_size=64`` takes 4
    gradient steps; with ``batch_size >= micro_batch`` (the default) it takes one."""

    def __post_init__(self) -> None:
        if not isinstance(self.loss, str) or self.loss not in CLICK_LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; valid losses are {list(CLICK_LOSSES)}")
        check_optimiser(self.optimiser)
        _set(self, "lr", check_real("lr", self.lr, low=0.0, high=MAX_LR, low_open=True))
        _set(self, "l1", check_real("l1", self.l1, low=0.0, high=MAX_LR))
        _set(self, "l2", check_real("l2", self.l2, low=0.0, high=MAX_LR))
        micro_batch = check_integer("micro_batch", self.micro_batch, minimum=1)
        _set(self, "micro_batch", _at_most("micro_batch", micro_batch, MAX_MICRO_BATCH, "10**6"))
        batch_size = check_integer("batch_size", self.batch_size, minimum=1)
        _set(self, "batch_size", _at_most("batch_size", batch_size, 10 * MAX_MICRO_BATCH, "10**7"))


def _at_most(name: str, value: int, maximum: int, shown: str) -> int:
    if value > maximum:
        raise ValueError(f"{name} must be an integer in [1, {shown}], got {value:.3g}")
    return value


@dataclass(frozen=True)
class UpdateRule:
    """One way the model is updated.

    Attributes:
        trigger: when (``driftrec.agents.triggers``).
        data: on what (``driftrec.agents.data``).
        scope: which parameter groups (``driftrec.agents.scopes.SCOPES``).
        freeze: groups held fixed even if ``scope`` includes them.
        terms: extra loss terms (EWC, distillation, ...); the learner's L1/L2 is added to all.
        merge: how the result combines with the parameters before the update.
        from_scratch: re-initialise the model before training (full retraining).
        epochs: passes over the data per update, in [1, 10**4].
        lr: learning rate of this rule, in (0, 10] (None: the learner's).
    """

    trigger: Trigger
    data: DataSource[Any] = field(default_factory=FreshData)
    scope: tuple[str, ...] = ("all",)
    freeze: tuple[str, ...] = ()
    terms: tuple[LossTerm, ...] = ()
    merge: Merge = field(default_factory=Replace)
    from_scratch: bool = False
    epochs: int = 1
    lr: float | None = None

    def __post_init__(self) -> None:
        for name, needs in (("trigger", "fires"), ("data", "training_data"), ("merge", "merge")):
            if not callable(getattr(getattr(self, name), needs, None)):
                raise TypeError(
                    f"{name} must be a {name} object (see driftrec.agents.{_MODULES[name]}), "
                    f"got {getattr(self, name)!r}"
                )
        _set(self, "scope", check_names("scope", self.scope, SCOPES))
        _set(self, "freeze", check_names("freeze", self.freeze, SCOPES[1:], allow_empty=True))
        terms = self.terms
        if not isinstance(terms, (tuple, list)):
            terms = (terms,)
        for term in terms:
            if not callable(getattr(term, "penalty", None)):
                raise TypeError(
                    f"terms must hold loss terms (EWC, Distillation, WeightPenalty), got {term!r}"
                )
        _set(self, "terms", tuple(terms))
        _set(self, "from_scratch", check_flag("from_scratch", self.from_scratch))
        _set(self, "epochs", _epochs("epochs", self.epochs))
        if self.lr is not None:
            _set(self, "lr", check_real("lr", self.lr, low=0.0, high=MAX_LR, low_open=True))


@dataclass(frozen=True)
class Strategy:
    """A named continual-learning strategy.

    Attributes:
        name: the preset's name (or any label).
        rules: update rules, checked in order after every micro-batch.
        pretrain_requests: logged requests the strategy wants to pretrain on before the stream
            (0: none). A runner passes them to ``agent.pretrain``.
        pretrain_epochs: passes over the logged data, in [1, 10**4].
        pretrain_scope: parameter groups pretraining trains.
    """

    name: str
    rules: tuple[UpdateRule, ...]
    pretrain_requests: int = 0
    pretrain_epochs: int = 3
    pretrain_scope: tuple[str, ...] = ("all",)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {self.name!r}")
        rules = self.rules
        if isinstance(rules, UpdateRule):
            rules = (rules,)
        if not isinstance(rules, (tuple, list)) or not all(
            isinstance(rule, UpdateRule) for rule in rules
        ):
            raise TypeError(f"rules must be a tuple of UpdateRule, got {self.rules!r}")
        _set(self, "rules", tuple(rules))
        requests = check_requests("pretrain_requests", self.pretrain_requests, minimum=0)
        _set(self, "pretrain_requests", requests)
        _set(self, "pretrain_epochs", _epochs("pretrain_epochs", self.pretrain_epochs))
        _set(self, "pretrain_scope", check_names("pretrain_scope", self.pretrain_scope, SCOPES))


def _epochs(name: str, value: Any) -> int:
    return _at_most(name, check_integer(name, value, minimum=1), MAX_EPOCHS, "10**4")


def _set(config: Any, name: str, value: Any) -> None:
    """Store a checked (normalised) value on a frozen dataclass."""
    object.__setattr__(config, name, value)


_MODULES = {"trigger": "triggers", "data": "data", "merge": "merging"}


STRATEGIES: Registry[Strategy] = Registry("strategy", plural="strategies")
"""Preset names and their builder functions (keyword arguments are the preset's parameters)."""


def _merge(merge: str, weight: float, ensemble_size: int) -> Merge:
    # ensemble_size is checked whatever the merge: Ensemble would report it as "size".
    ensemble_size = check_integer("ensemble_size", ensemble_size, minimum=1, maximum=100)
    if merge == "replace":
        return Replace()
    if merge == "moving_average":
        return MovingAverage(weight)
    if merge == "ensemble":
        return Ensemble(ensemble_size)
    raise ValueError(
        f"unknown merge {merge!r}; valid merges are ['ensemble', 'moving_average', 'replace']"
    )


def _every(every: Any) -> int:
    return check_requests("every", every, minimum=1)


def _window(window: Any, every: int) -> int:
    """The window of a periodic update: ``window`` requests, or ``every`` if None."""
    window = check_optional_integer("window", window, minimum=1)
    return every if window is None else check_requests("window", window, minimum=1)


@STRATEGIES.register()
def static(train_on: int = 20_000, epochs: int = 3, pretrain: int = 0) -> Strategy:
    """Train once, never update: the "no retraining" control of every drift study (Gama et al.
    2014, "A survey on concept drift adaptation", ACM CSUR, the static baseline).

    Trains the model as it stands when the stream starts (the warm start: ``pretrain`` logged
    requests if asked for, or a runner's shared pretraining, or the initial values) on the
    first ``train_on`` requests (``epochs`` passes), once, and never changes after that; it
    never re-initialises the model, so a warm start is kept. ``train_on=0`` is the no-update
    control: the model trains on logged data only, its own ``pretrain`` requests or the warm
    start a runner gives every agent through ``agent.pretrain`` (the quickstart's ``static``,
    ``train_on: 0``); without either it never trains at all. ``train_on`` must be 0 or at
    least the learner's ``micro_batch`` (the update fires at the end of the micro-batch that
    reaches it and trains on the last ``train_on`` requests).
    """
    train_on = check_requests("train_on", train_on, minimum=0)
    epochs = _epochs("epochs", epochs)
    pretrain = check_requests("pretrain", pretrain, minimum=0)
    rules: tuple[UpdateRule, ...] = ()
    if train_on:
        rules = (UpdateRule(Schedule((train_on,)), Window(train_on), epochs=epochs),)
    return Strategy("static", rules, pretrain_requests=pretrain)


@STRATEGIES.register()
def full_retrain(every: int = 10_000, epochs: int = 3, max_size: int | None = None) -> Strategy:
    """Periodic full retraining: every ``every`` requests, a model re-initialised from scratch
    is trained on every request observed on the stream so far (``epochs`` passes); the
    batch-retraining baseline of Zhang et al. 2020, "How to retrain recommender system? A
    sequential meta-learning method" (SIGIR). ``max_size`` (at most 10**8) bounds the history
    kept (None: all of it). Logged data given to ``agent.pretrain`` (a warm start) is not part
    of the history: the first retrain replaces the warm-started model by one trained on the
    stream alone."""
    max_size = None if max_size is None else check_requests("max_size", max_size, minimum=1)
    rule = UpdateRule(EveryN(_every(every)), Cumulative(max_size), from_scratch=True, epochs=epochs)
    return Strategy("full_retrain", (rule,))


@STRATEGIES.register()
def fine_tune(
    every: int = 2_000,
    window: int | None = None,
    epochs: int = 2,
    freeze: tuple[str, ...] = (),
    pretrain: int = 20_000,
    pretrain_epochs: int = 3,
) -> Strategy:
    """Transfer by fine-tuning (Yosinski et al. 2014, "How transferable are features in deep
    neural networks?", NeurIPS; in recommendation, the fine-tuning baseline of Zhang et al.
    2020, SIGIR): pretrain on ``pretrain`` logged requests from the source regime, then every
    ``every`` requests continue training (``epochs`` passes) on the last ``window`` requests
    (default: those since the previous update), with the groups in ``freeze`` held fixed (a
    group name or a tuple of them)."""
    every = _every(every)
    window = _window(window, every)
    pretrain = check_requests("pretrain", pretrain, minimum=0)
    rule = UpdateRule(EveryN(every), Window(window), freeze=freeze, epochs=epochs)
    return Strategy(
        "fine_tune", (rule,), pretrain_requests=pretrain, pretrain_epochs=pretrain_epochs
    )


@STRATEGIES.register()
def incremental(
    every: int = 2_000,
    window: int | None = None,
    epochs: int = 2,
    scope: tuple[str, ...] = ("embeddings",),
    merge: str = "moving_average",
    weight: float = 0.5,
    ensemble_size: int = 3,
) -> Strategy:
    """Incremental update: every ``every`` requests only part of the parameters (``scope``,
    default the id embeddings) is trained on the new data, and the updated model is integrated
    with the old one (``merge``: a moving average with ``weight`` on the update, an ensemble of
    ``ensemble_size``, or replace). Partial, frequent parameter refreshes follow production
    practice (Liu et al. 2022, "Monolith: real time recommendation system with collisionless
    embedding table", which syncs touched embeddings often and dense layers rarely); the
    integration is Polyak averaging (Polyak & Juditsky 1992) of the old and updated model.
    ``scope`` is a group name or a tuple of them (see ``driftrec.agents.SCOPES``)."""
    every = _every(every)
    rule = UpdateRule(
        EveryN(every),
        Window(_window(window, every)),
        scope,
        merge=_merge(merge, weight, ensemble_size),
        epochs=epochs,
    )
    return Strategy("incremental", (rule,))


@STRATEGIES.register()
def online(epochs: int = 1) -> Strategy:
    """Online learning: a gradient step on every micro-batch as it arrives (Rendle &
    Schmidt-Thieme 2008, "Online-updating regularized kernel matrix factorization models for
    large-scale recommender systems", RecSys; Vinagre et al. 2014, "Fast incremental matrix
    factorization for recommendation with positive-only feedback", UMAP)."""
    return Strategy("online", (UpdateRule(EveryStep(), FreshData(), epochs=epochs),))


@STRATEGIES.register()
def replay(capacity: int = 10_000, ratio: float = 1.0) -> Strategy:
    """Online learning with experience replay from a bounded reservoir (Rolnick et al. 2019,
    "Experience replay for continual learning", NeurIPS; reservoir sampling, Vitter 1985): each
    step trains on the fresh micro-batch plus ``ratio`` times as many examples drawn from a
    reservoir of ``capacity`` past requests."""
    return Strategy("replay", (UpdateRule(EveryStep(), Replay(capacity, ratio)),))


@STRATEGIES.register()
def ewc(
    strength: float = 10.0, decay: float = 0.9, every: int = 5_000, fisher_samples: int = 2_048
) -> Strategy:
    """Online learning regularised by online EWC (Kirkpatrick et al. 2017, PNAS; Schwarz et al.
    2018, "Progress & compress", ICML); see :class:`driftrec.agents.ewc.EWC`."""
    term = EWC(strength, decay, every, fisher_samples)
    return Strategy("ewc", (UpdateRule(EveryStep(), FreshData(), terms=(term,)),))


@STRATEGIES.register()
def distill(strength: float = 1.0, temperature: float = 2.0, every: int = 5_000) -> Strategy:
    """Online learning with LwF-style distillation from the previous model (Li & Hoiem 2017,
    "Learning without forgetting", TPAMI); see
    :class:`driftrec.agents.distillation.Distillation`."""
    term = Distillation(strength, temperature, every)
    return Strategy("distill", (UpdateRule(EveryStep(), FreshData(), terms=(term,)),))


@STRATEGIES.register()
def drift_triggered(
    signal: str = "reward",
    delta: float = 0.002,
    hold: int = 20_000,
    warmup: int = 20_000,
    warmup_epochs: int = 5,
    min_gap: int = 0,
    reward_scale: float = 1.0,
) -> Strategy:
    """Informed adaptation (Gama et al. 2014, "A survey on concept drift adaptation", ACM
    CSUR): train once on the first ``warmup`` requests (``warmup_epochs`` passes; 0: none, the
    model as it starts, a runner's warm start included), then stay fixed until ADWIN (Bifet &
    Gavalda 2007; ``river.drift.ADWIN`` with ``delta``) detects a change in the agent's own
    ``signal`` stream, one value per request (the observed
    ``reward``, the default, or the model's prequential ``loss``, as the surprise
    ``1 - exp(-loss)``); after each alarm, learn online for ``hold`` requests, longer while the
    detector still sees the stream change (see :class:`~driftrec.agents.triggers.DriftAlarm`:
    when learning stops, a fresh detector watches the fixed model, so that the agent's own
    improvement during the hold never raises a later alarm). Learning costs nothing while no
    change is detected. (On the built-in scenarios the reward stream gives fewer false alarms:
    the loss of a model on its own slates also moves with boredom.)

    The detector starts watching when the warm-up model starts serving (``DriftAlarm``'s
    ``start``): the reward's jump then is the agent's own doing, not drift (watched from the
    first request, it alarmed at the warm-up in every run, on the no-drift twin too).
    Measured on a sudden shift at 60k (500 users, 600 items, clicks, defaults; its test): at
    seeds 0-11, no alarm before the shift and the first 928-2,976 requests after it; the hold
    then brings the reward to 1.04-1.15 of its level before the shift (10k windows). In a lab
    cell (600 users, 300 items, a warm start of 3,000 logged requests, a shift at 30k, seeds
    0-2): the alarm 464 requests after the shift, none on the no-drift twin. Under the cascade
    choice model a stationary world alarmed in 4 of 4 runs (seeds 0-3; MNL: 0), e.g. when the
    fixed model's own reward fell by 0.05 as its slates bored users.

    ``delta`` (ADWIN's confidence), ``min_gap`` (requests between alarms) and ``reward_scale``
    (the reward that maps to 1: ADWIN assumes values in [0, 1], so give an engagement reward's
    bound here; rewards above it are clipped, with a warning) are passed to the trigger.
    ``warmup`` must be 0 or at least the learner's ``micro_batch``.
    """
    warmup = check_requests("warmup", warmup, minimum=0)
    warmup_epochs = _epochs("warmup_epochs", warmup_epochs)
    rules = [
        UpdateRule(
            DriftAlarm(signal, delta, hold, min_gap, reward_scale=reward_scale, start=warmup),
            FreshData(),
        )
    ]
    if warmup:
        rules.insert(0, UpdateRule(Schedule((warmup,)), Window(warmup), epochs=warmup_epochs))
    return Strategy("drift_triggered", tuple(rules))


@STRATEGIES.register()
def hybrid(
    pretrain: int = 20_000,
    every: int = 10_000,
    window: int | None = None,
    epochs: int = 2,
    scope: tuple[str, ...] = ("all",),
    weight: float = 0.5,
) -> Strategy:
    """Pretrain, then periodic incremental updates with online learning in between: the
    production pattern of He et al. 2014 ("Practical lessons from predicting clicks on ads at
    Facebook", ADKDD: periodic retraining plus online learning for freshness) and Liu et al.
    2022 (Monolith: batch and online training together). Online steps on every micro-batch;
    every ``every`` requests, an update of ``scope`` on the last ``window`` requests (default
    ``every``), integrated by a moving average with ``weight`` on the update."""
    pretrain = check_requests("pretrain", pretrain, minimum=0)
    every = _every(every)
    periodic = UpdateRule(
        EveryN(every),
        Window(_window(window, every)),
        scope,
        merge=MovingAverage(weight),
        epochs=epochs,
    )
    return Strategy(
        "hybrid", (UpdateRule(EveryStep(), FreshData()), periodic), pretrain_requests=pretrain
    )


def strategy_parameters(name: str) -> dict[str, Any]:
    """The parameters of preset ``name`` and their defaults."""
    return STRATEGIES.parameters(name)


def make_strategy(name: str, **params: Any) -> Strategy:
    """Build preset ``name`` with ``params`` overriding its defaults."""
    return STRATEGIES.build(name, **params)
