"""``Trajectory``: the one result type of the gradient flow and of gradient descent.

Times are flow times for both (GD's iterate k sits at t = k·lr), so flow and GD compare
on one axis. A trajectory may be a batch: every array then has a leading batch axis.
Saved points after a trajectory's end are NaN; its end point is always in ``t_final``,
``theta_final``, ``loss_final``.

Status codes (``Status``) are data, not exceptions: each comes with a message saying what
happened and what to do.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, fields

import numpy as np


class Status(enum.IntEnum):
    CONVERGED = 0
    HORIZON = 1
    MAX_STEPS = 2
    NONFINITE = 3
    SOLVER_FAILED = 4
    STATIONARY = 5
    NOT_MINIMUM = 6

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def ok(self) -> bool:
        return self in (Status.CONVERGED, Status.HORIZON, Status.STATIONARY)


_MESSAGES = {
    Status.CONVERGED: "reached loss ≤ threshold",
    Status.HORIZON: "reached the time horizon (or the iteration limit) with the loss "
    "still above the threshold: raise `t1` / `max_iter` if the loss is still falling",
    Status.STATIONARY: "reached a local minimum to working precision (‖∇ℓ‖ ≤ gtol·‖θ‖, "
    "∇²ℓ positive semi-definite, no further decrease predicted by Newton's step) with the "
    "loss above the threshold: θ(t) = θ_final up to the horizon (a non-global minimum if "
    "the loss is not small)",
    Status.NOT_MINIMUM: "failed: stopped by the stationarity test (‖∇ℓ‖ ≤ gtol·‖θ‖) at a "
    "point that is not a minimum — ∇²ℓ has a negative eigenvalue (a saddle) or Newton's "
    "step predicts a further loss decrease (see info['stationary_check']); the flow does "
    "not end there: perturb θ0, or lower `gtol` (0 disables the test)",
    Status.MAX_STEPS: "failed: the solver ran out of steps before the horizon; raise "
    "`max_steps` or loosen `rtol`",
    Status.NONFINITE: "failed: the state became NaN or infinite (diverged); for GD lower "
    "the learning rate below 2/λ_max(∇²ℓ), for the flow tighten `rtol`",
    Status.SOLVER_FAILED: "failed: the step size collapsed or the implicit solve did not "
    "converge; try another solver (e.g. solver='kvaerno5' or backend='scipy')",
}


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Saved points of one trajectory or of a batch (leading axis) of trajectories.

    Attributes:
        ts: (…, S) save times (NaN after the end).
        thetas: (…, S, p) states at ``ts``.
        losses: (…, S) ℓ at ``ts``.
        t_final, theta_final, loss_final: the end point (…,), (…, p), (…,).
        status: (…,) ``Status`` codes.
        steps: (…,) accepted steps (flow) or iterations (GD).
        grad_evals: (…,) evaluations of ∇ℓ (Jacobian evaluations count as p each).
        wall_time: seconds for the whole call (compilation excluded; see ``compile_time``).
        method: e.g. "diffrax:kvaerno5", "scipy:Radau", "gd".
        lr: learning rate for GD, None for the flow.
        info: free-form settings (tolerances, threshold, horizon, …).
    """

    ts: np.ndarray
    thetas: np.ndarray
    losses: np.ndarray
    t_final: np.ndarray
    theta_final: np.ndarray
    loss_final: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    grad_evals: np.ndarray
    wall_time: float = 0.0
    compile_time: float = 0.0
    method: str = ""
    lr: float | None = None
    info: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ batches
    @property
    def batched(self) -> bool:
        return np.ndim(self.t_final) > 0

    def __len__(self) -> int:
        if not self.batched:
            raise TypeError("a single trajectory has no length; use .ts")
        return len(self.t_final)

    def __getitem__(self, i) -> Trajectory:
        """One member (or a sub-batch) of a batched trajectory."""
        if not self.batched:
            raise TypeError("indexing needs a batched trajectory")
        arrays = {f.name: getattr(self, f.name)[i] for f in fields(self) if _is_array(f.name)}
        return Trajectory(**arrays, **self._scalars())

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _scalars(self):
        return {f.name: getattr(self, f.name) for f in fields(self) if not _is_array(f.name)}

    # ------------------------------------------------------------------ status
    @property
    def converged(self) -> np.ndarray:
        return self.status == Status.CONVERGED

    @property
    def messages(self):
        """Status message(s), one per member."""
        if self.batched:
            return [Status(int(s)).message for s in self.status]
        return Status(int(self.status)).message

    def summary(self) -> str:
        """One line per distinct status: how many, and what it means."""
        codes, counts = np.unique(np.atleast_1d(self.status), return_counts=True)
        lines = [f"{self.method}: {np.size(self.status)} trajectories, {self.wall_time:.3g} s"]
        for c, k in zip(codes, counts, strict=True):
            lines.append(f"  {k:6d}  {Status(int(c)).name.lower()}: {Status(int(c)).message}")
        return "\n".join(lines)

    def raise_on_failure(self) -> Trajectory:
        """Raise ``RuntimeError`` if any member failed; return self otherwise."""
        st = np.atleast_1d(self.status)
        bad = np.flatnonzero(np.isin(st, [Status.MAX_STEPS, Status.NONFINITE,
                                          Status.SOLVER_FAILED]))
        if bad.size:
            s = Status(int(st[bad[0]]))
            raise RuntimeError(f"{bad.size} trajectory(ies) {s.message} (first: #{bad[0]}).")
        return self

    # ------------------------------------------------------------------ saving
    def valid(self):
        """(ts, thetas, losses) of a single trajectory with the NaN padding dropped and
        the end point appended if it is not already the last save."""
        if self.batched:
            raise TypeError("valid() is for a single trajectory; index the batch first")
        keep = np.isfinite(self.ts)
        ts, th, ls = self.ts[keep], self.thetas[keep], self.losses[keep]
        if not ts.size or ts[-1] < self.t_final:
            ts = np.append(ts, self.t_final)
            th = np.vstack([th, self.theta_final[None]])
            ls = np.append(ls, self.loss_final)
        return ts, th, ls

    def save(self, path) -> None:
        """Write to ``.npz`` (arrays + a JSON header with the scalar fields)."""
        meta = self._scalars()
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if _is_array(f.name)}
        np.savez_compressed(path, **arrays, meta=np.asarray(json.dumps(meta, default=str)))

    @classmethod
    def load(cls, path) -> Trajectory:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
        return cls(**arrays, **meta)


_SCALAR_FIELDS = {"wall_time", "compile_time", "method", "lr", "info"}


def _is_array(name: str) -> bool:
    return name not in _SCALAR_FIELDS
