"""Concurrent user sessions over one shared world (the engine under every environment).

A session is one user's visit: it starts with a user drawn by activity, lasts a geometric budget
of requests (capped), and ends early when, after a request without a click, the user leaves
(``leave_prob``). A user whose session ended without any click churns for good with
``churn_prob``. Users come back later through the activity-weighted draw of new sessions.

Population switches are sharp. When a drift process changes the cohorts' activity multipliers
(a recurring population regime, a cohort-mix step, a new cohort's arrival), running sessions are
thinned at once so that the users in session follow the new activity, not only the sessions
that start later: a session of a user of cohort ``c`` goes on with probability
``r_c / max_c' r_c'``, where ``r_c`` is the cohort's new multiplier over its old one, and the
sessions that end are replaced by new ones drawn from the new population. If sessions were
distributed as the old activity, they are then exactly distributed as the new one (a cohort
that rises from 0, such as a new cohort, restarts every session). Thinned sessions end with
``terminated`` (the user went away with their population) and never cause churn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftrec.simulators.requests import Requests, Response, lean
from driftrec.simulators.world import World
from driftrec.slates import as_slates

__all__ = ["SessionBatch", "SessionStep"]


@dataclass
class SessionStep:
    """Result of serving one slate per session.

    Attributes:
        response: the world's response for the batch (the served rows).
        terminated: (n,) bool, the session ended at this request.
    """

    response: Response
    terminated: np.ndarray


class SessionBatch:
    """``num_sessions`` concurrent sessions; a finished session is replaced at once (its slot
    starts the next user's session in the same call), so every slot always has a request.

    Attributes:
        requests: the pending request of every slot.
        users: (n,) user in each slot.
    """

    def __init__(self, world: World, num_sessions: int) -> None:
        if num_sessions < 1:
            raise ValueError(f"num_sessions must be >= 1, got {num_sessions}")
        self.world = world
        self.num_sessions = num_sessions
        self.users = np.zeros(num_sessions, dtype=np.int64)
        self.budget = np.zeros(num_sessions, dtype=np.int64)
        self.length = np.zeros(num_sessions, dtype=np.int64)
        self.clicks = np.zeros(num_sessions, dtype=np.int64)
        self._start(np.arange(num_sessions))
        self.requests: Requests = world.make_requests(self.users)

    def _start(self, slots: np.ndarray) -> None:
        cfg = self.world.config
        rng = self.world.rng["requests"]
        self.users[slots] = self.world.sample_users(len(slots))
        budget = rng.geometric(1.0 / cfg.session_mean_length, len(slots))
        self.budget[slots] = np.minimum(budget, cfg.session_max_length)
        self.length[slots] = 0
        self.clicks[slots] = 0

    def restart(self, slots: np.ndarray) -> None:
        """Abandon the sessions in ``slots`` and start new ones (fresh requests for all)."""
        self._start(np.asarray(slots, dtype=np.int64))
        self.requests = self.world.make_requests(self.users)

    def serve(
        self, slates: np.ndarray, active: np.ndarray | None = None, *, checked: bool = False
    ) -> SessionStep:
        """Serve ``slates`` (n, k) of candidate positions to the pending requests: -1 is an
        empty slot, and a position repeated in a row is shown once, at its first slot.

        Args:
            slates: one slate per session slot.
            active: (n,) bool, the slots to serve (default: all). An inactive slot's request
                is not served (its slate is ignored, the clock does not count it) and its
                session neither advances nor ends; the response covers active slots only, in
                slot order.
            checked: the slates were already checked and their repeats emptied (by
                ``driftrec.slates.as_slates``, or the environments' action check, which pass
                True): skip doing it again.
        """
        if not checked:
            cfg = self.world.config
            c = self.requests.candidates.shape[1]
            slates = as_slates(slates, self.num_sessions, cfg.slate_size, c)
        if active is None and lean(self.num_sessions):
            return self._serve_one(slates)
        world = self.world
        cfg = world.config
        activity = world.users.cohort_activity.copy()
        if active is None:
            rows = np.arange(self.num_sessions)
            response = world.respond(self.requests, slates, checked=True)
        else:
            rows = np.flatnonzero(active)
            response = world.respond(
                self.requests.take(rows), np.asarray(slates)[rows], checked=True
            )
        true_click = np.zeros(self.num_sessions, dtype=bool)
        true_click[rows] = response.true_click_slot >= 0
        served = np.zeros(self.num_sessions, dtype=bool)
        served[rows] = True
        self.length += served
        self.clicks += true_click
        if active is None:
            u = world.rng["responses"].random((self.num_sessions, 2))
        else:
            u = np.ones((self.num_sessions, 2))  # an unserved slot neither leaves nor churns
            u[rows] = world.rng["responses"].random((len(rows), 2))
        leave = ~true_click & (u[:, 0] < cfg.leave_prob)
        terminated = served & ((self.length >= self.budget) | leave)
        ended = np.flatnonzero(terminated)
        if len(ended):
            unhappy = ended[(self.clicks[ended] == 0) & (u[ended, 1] < cfg.churn_prob)]
            world.churn(self.users[unhappy])
        gone = self._thin(activity, ~terminated)
        terminated |= gone & served
        restart = np.flatnonzero(terminated | gone)
        if len(restart):
            self._start(restart)
        self.requests = world.make_requests(self.users)
        return SessionStep(response, terminated)

    def _serve_one(self, slates: np.ndarray) -> SessionStep:
        """``serve`` for one session, every step of the single environment: the same
        decisions from the same random numbers, on Python scalars instead of arrays of one."""
        world = self.world
        cfg = world.config
        activity = world.users.cohort_activity.copy()
        response = world.respond(self.requests, slates, checked=True)
        clicked = bool(response.true_click_slot[0] >= 0)
        self.length[0] += 1
        self.clicks[0] += clicked
        # random((1, 2)) of serve: the same two draws in the same order.
        leave_u, churn_u = world.rng["responses"].random(2).tolist()
        ended = bool(self.length[0] >= self.budget[0]) or (not clicked and leave_u < cfg.leave_prob)
        if ended and self.clicks[0] == 0 and churn_u < cfg.churn_prob:
            world.churn(self.users.copy())
        # What _thin compares, as lists: Python float equality is NumPy's (array_equal).
        if activity.tolist() != world.users.cohort_activity.tolist():
            ended |= bool(self._thin(activity, np.array([not ended]))[0])
        if ended:
            self._start(np.zeros(1, dtype=np.int64))
        self.requests = world.make_requests(self.users)
        return SessionStep(response, np.array([ended]))

    def _thin(self, before: np.ndarray, running: np.ndarray) -> np.ndarray:
        """(n,) bool: running sessions that end because the cohorts' activity moved from
        ``before`` to now (see the module docstring); all False when nothing changed."""
        after = self.world.users.cohort_activity
        gone = np.zeros(self.num_sessions, dtype=bool)
        if np.array_equal(before, after):
            return gone
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(before > 0, after / before, np.where(after > 0, np.inf, 0.0))
        top = ratio.max()
        # A cohort rising from zero restarts every session; if nobody is active any more,
        # sampling the new sessions will say so.
        keep = ratio / top if 0 < top < np.inf else np.zeros_like(ratio)
        u = self.world.rng["responses"].random(self.num_sessions)
        cohort = self.world.users.cohort[self.users]
        return running & (u >= keep[cohort])
