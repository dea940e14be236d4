"""The sums behind the normalised reward that the RL integrations report: the sum of
``info["expected_reward"]`` over the sum of ``info["oracle_expected_reward"]`` of a set of
served requests (ground truth, never seen by a policy; 1 for the exact myopic oracle).

One definition for the Stable-Baselines3 example's wrapper (``examples/sb3_ppo.py``), the RLlib
callback (:class:`driftrec.rl.rllib.NormalisedRewardCallback`) and the RLlib example's random
baseline (``examples/rllib_ppo.py``). Each of them keeps two running totals, adds
:func:`reward_sums` of every step's info to them, and divides the totals when it reports. The
module imports no RL library.

Example:
    >>> reward_sums({"expected_reward": np.array([0.25, 0.0]),
    ...              "oracle_expected_reward": np.array([0.5, 0.0])})
    (0.25, 0.5)
    >>> reward_sums([{"expected_reward": 0.25, "oracle_expected_reward": 0.5},
    ...              {"expected_reward": 0.5, "oracle_expected_reward": 0.5}])
    (0.75, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["EXPECTED_KEY", "ORACLE_KEY", "reward_sums"]

EXPECTED_KEY = "expected_reward"
"""The info key of the served slate's exact expected reward."""
ORACLE_KEY = "oracle_expected_reward"
"""The info key of the exact best slate's expected reward (0 where nothing was served)."""


def reward_sums(info: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """The expected reward and the oracle's expected reward of one step, each summed over the
    step's requests.

    Args:
        info: a Gymnasium info: of one request (scalars) or of a vector environment (``(B,)``
            arrays, 0 in a row that served nothing), summed by ``np.sum``; or
            Stable-Baselines3's ``infos``, one dict of scalars per request, summed in their
            order by Python's ``sum``.

    Returns:
        ``(expected, oracle)``.
    """
    if isinstance(info, Mapping):
        return float(np.sum(info[EXPECTED_KEY])), float(np.sum(info[ORACLE_KEY]))
    return (
        float(sum(row[EXPECTED_KEY] for row in info)),
        float(sum(row[ORACLE_KEY] for row in info)),
    )
