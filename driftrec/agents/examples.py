"""Training examples: what was shown for a request and what the user did with it.

One example is one served request: the user side of the observation, the items of the slate
that were shown (ids, features, topics; ``-1`` ids at empty slots) and the observed click. This
is the unit every data store keeps and every loss consumes; it is built the same way from live
transitions and from logged interactions (pretraining).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from driftrec.agents.checks import (
    Feedback,
    LoggedData,
    check_logged,
    check_served,
    check_transition,
)
from driftrec.agents.protocol import Observation, TaskSizes, Transition

__all__ = ["SlateExamples", "as_tensor"]


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor with the values and dtype of ``array`` (a copy): state dicts hold tensors,
    never numpy arrays, so that ``torch.load`` can read them with ``weights_only=True``."""
    return torch.from_numpy(np.array(array, copy=True, order="C"))


@dataclass
class SlateExamples:
    """A batch of ``n`` served requests (numpy, so stores stay cheap and framework-free).

    Attributes:
        user_id: (n,) int64.
        user_features: (n, f_u) float32.
        history: (n, H) int64 recently clicked item ids, newest first, -1 padded.
        item_ids: (n, k) int64 ids of the shown items, -1 at empty slots.
        item_features: (n, k, f_i) float32 (zeros at empty slots' positions are not implied:
            an empty slot repeats the features of candidate 0; use ``item_ids >= 0`` as mask).
        item_topics: (n, k) int64.
        click_slot: (n,) int64 observed clicked slot, -1 for none.
        reward: (n,) float32 observed reward.
    """

    user_id: np.ndarray
    user_features: np.ndarray
    history: np.ndarray
    item_ids: np.ndarray
    item_features: np.ndarray
    item_topics: np.ndarray
    click_slot: np.ndarray
    reward: np.ndarray

    def __len__(self) -> int:
        return len(self.user_id)

    @classmethod
    def from_observation(
        cls,
        obs: Observation,
        slates: np.ndarray,
        click_slot: np.ndarray,
        reward: np.ndarray,
    ) -> SlateExamples:
        """Examples from an observation batch and the slates (B, k) served to it (-1 empty),
        checked (``driftrec.agents.checks.check_served``)."""
        caller = "SlateExamples.from_observation"
        return cls.from_feedback(check_served(obs, slates, click_slot, reward, caller=caller))

    @classmethod
    def from_feedback(cls, feedback: Feedback) -> SlateExamples:
        """Examples from checked feedback (``driftrec.agents.checks.check_transition``)."""
        obs, slates = feedback.obs, feedback.slates
        click_slot, reward = feedback.click_slot, feedback.reward
        n, k = slates.shape
        cands = np.asarray(obs["candidate_ids"])
        c = cands.shape[1]
        # Flat gathers: several times faster than broadcast fancy indexing on small batches.
        flat = (np.arange(n)[:, None] * c + np.maximum(slates, 0)).reshape(-1)
        ids = cands.reshape(-1).take(flat).reshape(n, k)
        empty = slates < 0
        if empty.any():
            ids[empty] = -1
        features = np.asarray(obs["candidate_features"])
        return cls(
            # A copy: an environment may reuse the array it handed out (driftrec's session
            # batch does, for user ids), and examples outlive the step.
            user_id=np.array(obs["user_id"], dtype=np.int64),
            user_features=np.asarray(obs["user_features"], dtype=np.float32),
            history=np.asarray(obs["history"], dtype=np.int64),
            item_ids=ids,
            item_features=features.reshape(n * c, -1).take(flat, axis=0).reshape(n, k, -1),
            item_topics=np.asarray(obs["candidate_topics"]).reshape(-1).take(flat).reshape(n, k),
            click_slot=np.asarray(click_slot, dtype=np.int64),
            reward=np.asarray(reward, dtype=np.float32),
        )

    @classmethod
    def from_transition(
        cls, transition: Transition, sizes: TaskSizes | None = None
    ) -> SlateExamples:
        """Examples from a transition's served rows (a repeated position in the action is an
        empty slot), checked against ``sizes`` if given."""
        return cls.from_feedback(check_transition(transition, sizes))

    @classmethod
    def from_logged(cls, logged: LoggedData, sizes: TaskSizes | None = None) -> SlateExamples:
        """Examples from logged interactions (``env.log_interactions(n)``: ``observation``,
        ``slates``, ``click_slot``, ``reward``), checked against ``sizes`` if given."""
        return cls.from_feedback(check_logged(logged, sizes))

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The columns as CPU tensors (same dtypes and values): what a checkpoint holds, loadable
        by ``torch.load`` with its default ``weights_only=True``."""
        return {name: as_tensor(col) for name, col in self.columns().items()}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> SlateExamples:
        """Examples from a :meth:`state_dict` (the arrays are copies)."""
        return cls(**{f.name: state[f.name].numpy().copy() for f in dataclasses.fields(cls)})

    def take(self, index: np.ndarray | slice) -> SlateExamples:
        """The rows ``index`` (an index array or a slice)."""
        return SlateExamples(**{name: col[index] for name, col in self.columns().items()})

    @staticmethod
    def concat(parts: Sequence[SlateExamples]) -> SlateExamples:
        parts = [p for p in parts if len(p)]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            raise ValueError("cannot concatenate an empty list of examples")
        names = [f.name for f in dataclasses.fields(SlateExamples)]
        return SlateExamples(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in names}
        )

    @classmethod
    def empty_like(cls, template: SlateExamples, capacity: int) -> SlateExamples:
        """Preallocated storage for ``capacity`` rows shaped like ``template``."""
        return cls(
            **{
                name: np.zeros((capacity, *col.shape[1:]), dtype=col.dtype)
                for name, col in template.columns().items()
            }
        )

    def put(self, index: np.ndarray | slice, rows: SlateExamples) -> None:
        """Write ``rows`` at ``index`` (in place)."""
        for name, col in self.columns().items():
            col[index] = getattr(rows, name)
