"""Concurrent user sessions over one shared world (the engine under every environment).

A session is one user's visit: it starts with a user drawn by activity, lasts a geometric budget
of requests (capped), and ends early when, after a request without a click, the user leaves
(``leave_prob``). A user whose session ended without any click churns for good with
``churn_prob``. Users come back later through the activity-weighted draw of new sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftrec.simulators.world import Requests, Response, World

__all__ = ["SessionBatch", "SessionStep"]


@dataclass
class SessionStep:
    """Result of serving one slate per session.

    Attributes:
        response: the world's response for the batch (n rows).
        terminated: (n,) bool, the session ended at this request.
        session_length: (n,) int64 requests served in the session so far (including this one).
        session_clicks: (n,) int64 true clicks in the session so far.
    """

    response: Response
    terminated: np.ndarray
    session_length: np.ndarray
    session_clicks: np.ndarray


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

    def serve(self, slates: np.ndarray) -> SessionStep:
        """Serve ``slates`` (n, k) of candidate positions (-1: empty) to the pending requests."""
        world = self.world
        cfg = world.config
        response = world.respond(self.requests, slates)
        self.length += 1
        true_click = response.true_click_slot >= 0
        self.clicks += true_click
        u = world.rng["responses"].random((self.num_sessions, 2))
        leave = ~true_click & (u[:, 0] < cfg.leave_prob)
        terminated = (self.length >= self.budget) | leave
        length, clicks = self.length.copy(), self.clicks.copy()
        ended = np.flatnonzero(terminated)
        if len(ended):
            unhappy = ended[(self.clicks[ended] == 0) & (u[ended, 1] < cfg.churn_prob)]
            world.churn(self.users[unhappy])
            self._start(ended)
        self.requests = world.make_requests(self.users)
        return SessionStep(response, terminated, length, clicks)
