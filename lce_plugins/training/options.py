"""Settings of a training (no TensorFlow needed to read or check them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lce_plugins.pmt_response import DEFAULT_BASELINE_NOISE_PE

__all__ = ["STRATEGIES", "TrainingOptions", "options_with"]

#: TensorFlow distribution strategies a training can use.
STRATEGIES = ("default", "mirrored")
#: Rounds a training runs at least, unless max_rounds is lower.
DEFAULT_MIN_ROUNDS = 3


@dataclass(frozen=True)
class TrainingOptions:
    """Settings of a co-evolution training.

    Attributes
    ----------
    max_rounds, min_rounds : int
        Bounds on the number of rounds (passes over the training events); min_rounds
        defaults to the smaller of 3 and max_rounds.
    tolerance : float
        Stop once the held-out deviance per ndf improves by less than this (relative).
    batch_size : int
        Events per Adam step.
    block_batches : int
        Mini-batches per block: the block's events are refitted before its steps.
    learning_rate, learning_rate_decay, min_learning_rate : float
        Adam's step size at the start, its fall per round, and its floor.
    heldout_fraction : float
        Share of the events held out to judge the map.
    rejection_sigmas : float
        Outlier cut: robust standard deviations of D / (E[D] - 3) above its median.
    coevolve : bool
        Refit the positions (True) or keep them at their initial values (False).
    gauss_newton : bool
        End each round with a Gauss-Newton step of the map with the events' positions
        and light profiled (:mod:`lce_plugins.training.gauss_newton`).
    gauss_newton_damping : float
        Its Levenberg-Marquardt factor.
    smoothness : float
        Weight kappa of the roughness penalty of the learned functions: the training
        maximises ln L - kappa * roughness
        (:meth:`lce_plugins.model.StructuralLCE.roughness`). It ties knots the data
        barely see to their neighbours; where data are plentiful it is negligible.
    strategy : str
        ``"default"`` or ``"mirrored"`` (TensorFlow distribution strategy).
    seed : int
        Seeds the split and the order of the events.
    sigma0 : float
        Baseline noise of a channel without photoelectrons [PE].
    """

    max_rounds: int = 10
    min_rounds: int | None = None
    tolerance: float = 2e-4
    batch_size: int = 256
    block_batches: int = 8
    learning_rate: float = 0.05
    learning_rate_decay: float = 0.7
    min_learning_rate: float = 2.5e-3
    heldout_fraction: float = 0.2
    rejection_sigmas: float = 5.0
    coevolve: bool = True
    gauss_newton: bool = True
    gauss_newton_damping: float = 1e-3
    smoothness: float = 10.0
    strategy: str = "default"
    seed: int = 0
    sigma0: float = DEFAULT_BASELINE_NOISE_PE

    def __post_init__(self):
        if self.min_rounds is None:
            object.__setattr__(self, "min_rounds", min(DEFAULT_MIN_ROUNDS, self.max_rounds))
        problems = []
        if not 1 <= self.min_rounds <= self.max_rounds:
            problems.append(f"need 1 <= min_rounds <= max_rounds, got {self.min_rounds}, "
                            f"{self.max_rounds}")  # fmt: skip
        for name in ("batch_size", "block_batches"):
            if not getattr(self, name) >= 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        positive = ("learning_rate", "min_learning_rate", "rejection_sigmas", "sigma0",
                    "gauss_newton_damping")  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.learning_rate_decay <= 1:
            problems.append(
                f"learning_rate_decay must lie in (0, 1], got {self.learning_rate_decay}"
            )
        if not 0 < self.heldout_fraction < 1:
            problems.append(f"heldout_fraction must lie in (0, 1), got {self.heldout_fraction}")
        if not self.smoothness >= 0:
            problems.append(f"smoothness must be >= 0, got {self.smoothness}")
        if not self.tolerance >= 0:
            problems.append(f"tolerance must be >= 0, got {self.tolerance}")
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if problems:
            raise ValueError("Bad training options: " + "; ".join(problems) + ".")


def options_with(options: TrainingOptions | None, overrides: dict) -> TrainingOptions:
    """``options`` (default: :class:`TrainingOptions`) with keyword overrides."""
    options = TrainingOptions() if options is None else options
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainingOptions)}
    if unknown:
        raise TypeError(f"Unknown training option(s) {sorted(unknown)}; see TrainingOptions.")
    if "max_rounds" in overrides and overrides.get("min_rounds") is None:
        # a lower max_rounds alone lowers the minimum with it
        overrides = {**overrides, "min_rounds": min(options.min_rounds, overrides["max_rounds"])}
    return dataclasses.replace(options, **overrides)
