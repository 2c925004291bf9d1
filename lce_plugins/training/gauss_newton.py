"""A Gauss-Newton step of the map with every event's position and light profiled out.

Why: the map and the positions trade off. A wrong efficiency of PMT j is partly absorbed
by moving the events near it; too much wall reflection W by lowering the efficiencies of
the outermost PMTs and moving the events at the wall. Along such valleys the gradient
of the likelihood is weak, and mini-batch Adam, whose steps there are mostly noise,
crawls: after eight rounds of 20 000 synthetic events the efficiencies were still 1 %
off and W 50 % too high. The likelihood with each event's (x, y, ln N) maximised out is
a smooth function of the map whose curvature can be computed exactly, so a Gauss-Newton
step on it goes down the valleys in one move.

The step moves the knot values of the wire transmission S and of the reflection W, the
PMT efficiencies (through their weights, ln eps_j up to the common normalisation) and
ln F of the floor; mu is linear in each of them, so the linear model behind the step
holds far. The direct light D is left to the network's Adam steps: near zero distance
its knots drop by less than a per cent each, and a linear step in them soon breaks the
non-increasing shape (the projection back flattens knots into steps that spoil the
position fits), while the data determine D well without help.

With mu_kj = N_k [eps_j (D(rho) S(t) + W(L) S(t')) + F], per event k with
p_k = (x_k, y_k, ln N_k), J_kj = d mu_kj / d p_k, b_kj = d mu_kj / d theta (at most 14
entries: four knots each of S(t), W(L), S(t'), the efficiency and the floor) and
Fisher-scoring weights w_kj = -d^2 ln L / d mu^2 (clamped positive), eliminating p_k
(the Schur complement) gives

    H = sum_kj w b b^T - sum_k C_k A_k^T,    g = sum_kj g_kj b_kj - sum_k C_k c_k,

with A_k = sum_j w_kj b_kj J_kj^T (P x 3), C_k = A_k (sum_j w_kj J_kj J_kj^T)^-1,
c_k = sum_j g_kj J_kj and g_kj = d ln L / d mu. The training's roughness penalty
(:meth:`lce_plugins.model.StructuralLCE.roughness`) is added, and the step solves
(H + lambda diag H) delta = g (Levenberg-Marquardt); directions the data do not see
(dead PMTs, knots beyond every slope or path) get no step. The knots' dependence on
their neighbours (the Hermite slopes are harmonic means of the neighbouring secants) is
differentiated exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np

from lce_plugins.features import structural_features
from lce_plugins.lce_map import LCEMap
from lce_plugins.likelihood import log_likelihood_derivatives

__all__ = ["BLOCKS", "MapStep", "apply_step", "profiled_gauss_newton_step"]

log = logging.getLogger(__name__)

#: The parameter blocks of the step, in order.
BLOCKS = ("shadow", "reflection", "efficiency", "floor")
#: Events per block of the curvature sums (bounds the (n, P, 3) arrays' memory).
_EVENTS_PER_BLOCK = 2048
#: Lower bound of the per-PMT weight -d^2 ln L / d mu^2, times (1 + mu): the
#: compound-Poisson ln L is not concave in mu at a few PE.
_MIN_CURVATURE = 0.01
#: The Levenberg-Marquardt factor is raised up to this to keep a step short.
_MAX_DAMPING = 1e3
#: Entries of d mu / d theta per event-PMT pair.
_ENTRIES = 14


@dataclass(frozen=True)
class MapStep:
    """A step of the map and what it expects to gain.

    Attributes
    ----------
    delta : dict
        Block name (:data:`BLOCKS`) -> change (float64): of the knot values of S and W,
        of the efficiency weights and of ln F.
    expected_gain : float
        The increase of the profiled, penalised ln L that the quadratic model predicts.
    n_events : int
        Events that entered.
    """

    delta: dict
    expected_gain: float
    n_events: int


@numba.njit(cache=True, nogil=True)
def _knot_derivatives(values, step, x, index, weight):
    """Value at ``x`` of the Hermite spline through the knot ``values`` (slopes: harmonic
    means of neighbouring secants, 0 at the ends) and its derivatives with respect to the
    four knot values that it depends on: ``index[:4]`` and ``weight[:4]``."""
    n = values.size
    position = min(max(x / step, 0.0), n - 1.0)
    i = min(int(position), n - 2)
    u = position - i
    rest = 1.0 - u
    h00, h10 = (1.0 + 2.0 * u) * rest * rest, u * rest * rest
    h01, h11 = u * u * (3.0 - 2.0 * u), -u * u * rest
    for q in range(4):
        index[q] = min(max(i - 1 + q, 0), n - 1)
        weight[q] = 0.0
    weight[1] += h00
    weight[2] += h01
    value = h00 * values[i] + h01 * values[i + 1]

    # the slope at knot k (interior only) and its pull on knots k-1, k, k+1
    for k, h, first in ((i, h10, 0), (i + 1, h11, 1)):
        if 1 <= k <= n - 2:
            left, right = values[k] - values[k - 1], values[k + 1] - values[k]
            if left * right > 0.0:
                total = left + right
                value += h * 2.0 * left * right / total
                d_left, d_right = 2.0 * right * right / total**2, 2.0 * left * left / total**2
                weight[first] -= h * d_left
                weight[first + 1] += h * (d_left - d_right)
                weight[first + 2] += h * d_right
    return value


@numba.njit(cache=True, nogil=True)
def _pair_derivatives(features, light, efficiency, floor, pmt, splines, offsets, index, entry):
    """LCE and d mu / d theta of one event-PMT pair: fills ``index[:14]`` and ``entry[:14]``
    (16 long: D's knot derivatives pass through the last four on the way).

    ``splines`` = (D knots, D step, S knots, S step, W knots, W step); ``offsets`` the
    first parameter of each block of :data:`BLOCKS`; ``pmt`` the channel."""
    direct_v, direct_step, shadow_v, shadow_step, refl_v, refl_step = splines
    direct = _knot_derivatives(direct_v, direct_step, features[0], index[12:], entry[12:])
    shadow = _knot_derivatives(shadow_v, shadow_step, features[1], index[0:4], entry[0:4])
    reflection = _knot_derivatives(refl_v, refl_step, features[2], index[4:8], entry[4:8])
    shadow_r = _knot_derivatives(shadow_v, shadow_step, features[3], index[8:12], entry[8:12])
    scale = light * efficiency
    for q in range(4):
        entry[q] *= scale * direct  # d mu / d S knots, direct ray
        entry[4 + q] *= scale * shadow_r  # d mu / d W knots
        entry[8 + q] *= scale * reflection  # d mu / d S knots, reflected ray
        index[q] += offsets[0]
        index[4 + q] += offsets[1]
        index[8 + q] += offsets[0]
    light_before_floor = direct * shadow + reflection * shadow_r
    index[12], entry[12] = offsets[2] + pmt, scale * light_before_floor  # d mu / d ln eps
    index[13], entry[13] = offsets[3], light * floor  # d mu / d ln F
    return efficiency * light_before_floor + floor


@numba.njit(cache=True, nogil=True)
def _accumulate_events(
    first,
    stop,
    features,
    used,
    light,
    jacobian,
    gradient_mu,
    weight_mu,
    efficiency,
    floor,
    splines,
    offsets,
    fisher,
    gradient,
    cross,
    profiled_curvature,
    profiled_gradient,
    mismatch,
):
    """Add events first..stop-1 to ``fisher`` and ``gradient``, and fill their rows of
    ``cross`` (A_k), ``profiled_curvature`` and ``profiled_gradient``. ``mismatch[0]``
    gets the largest |N LCE / mu - 1|: a check that the derivatives' model is the map."""
    # two more than the entries: scratch of D's knot derivatives (only its value is used)
    index, entry = np.empty(_ENTRIES + 2, np.int64), np.empty(_ENTRIES + 2)
    n_profiled = jacobian.shape[2]
    for k in range(first, stop):
        row = k - first
        for j in range(used.shape[1]):
            if not used[k, j]:
                continue
            lce = _pair_derivatives(
                features[k, j], light[k], efficiency[j], floor, j, splines, offsets, index, entry
            )
            mu = jacobian[k, j, n_profiled - 1]
            mismatch[0] = max(mismatch[0], abs(light[k] * lce / mu - 1.0))
            w, g = weight_mu[k, j], gradient_mu[k, j]
            for p in range(_ENTRIES):
                wp = w * entry[p]
                gradient[index[p]] += g * entry[p]
                for q in range(_ENTRIES):
                    fisher[index[p], index[q]] += wp * entry[q]
                for a in range(n_profiled):
                    cross[row, index[p], a] += wp * jacobian[k, j, a]
            for a in range(n_profiled):
                profiled_gradient[row, a] += g * jacobian[k, j, a]
                for b in range(n_profiled):
                    profiled_curvature[row, a, b] += w * jacobian[k, j, a] * jacobian[k, j, b]


@numba.njit(cache=True, parallel=True)
def _accumulate(
    features,
    used,
    light,
    jacobian,
    gradient_mu,
    weight_mu,
    efficiency,
    floor,
    splines,
    offsets,
    fisher,
    gradient,
    cross,
    profiled_curvature,
    profiled_gradient,
    mismatch,
):
    """:func:`_accumulate_events` over Numba's threads; each part sums into its own
    ``fisher[part]`` and ``gradient[part]`` and writes its own events' rows."""
    n_events, n_parts = used.shape[0], fisher.shape[0]
    for part in numba.prange(n_parts):
        first, stop = part * n_events // n_parts, (part + 1) * n_events // n_parts
        _accumulate_events(
            first,
            stop,
            features,
            used,
            light,
            jacobian,
            gradient_mu,
            weight_mu,
            efficiency,
            floor,
            splines,
            offsets,
            fisher[part],
            gradient[part],
            cross[first:stop],
            profiled_curvature[first:stop],
            profiled_gradient[first:stop],
            mismatch[part:],
        )


# --- Python side ------------------------------------------------------------------------


def _layer_state(layer) -> dict:
    """What the step needs of a StructuralLCE layer, as float64 NumPy arrays."""
    from keras import ops

    def numpy(tensor):
        return np.asarray(ops.convert_to_numpy(tensor), dtype=np.float64)

    splines = {name: getattr(layer, name) for name in ("direct", "shadow", "reflection")}
    return dict(
        values={name: numpy(spline.knot_values()) for name, spline in splines.items()},
        steps={name: spline.step for name, spline in splines.items()},
        natural={name: numpy(knots) for name, knots in layer.natural_coordinates().items()},
        efficiency_raw=numpy(layer.efficiency_raw),
        floor_raw=float(numpy(layer.floor_raw)),
        efficiency=numpy(layer.efficiency()),
        floor=float(numpy(layer.floor())),
        live=np.asarray(layer._live, dtype=bool),
    )


def _offsets(state: dict) -> np.ndarray:
    """First parameter of each block of :data:`BLOCKS`, and the total."""
    sizes = [
        state["values"]["shadow"].size,
        state["values"]["reflection"].size,
        state["efficiency"].size,
        1,
    ]
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _block_terms(lce_map: LCEMap, state, events, sigma0, positions, fisher, gradient):
    """Add one block of events to the sums; returns the Schur correction
    sum_k C_k A_k^T, its gradient part sum_k C_k c_k, and the largest relative mismatch
    between the derivatives' model and the map."""
    area, used, x, y, n_photons = events
    lce, dlce_dx, dlce_dy = lce_map.lce_and_gradient(x, y)
    mu = n_photons[:, None] * lce
    # d mu / d(x, y, ln N), or d mu / d ln N alone when the positions are held fixed
    columns = [n_photons[:, None] * dlce_dx, n_photons[:, None] * dlce_dy] if positions else []
    jacobian = np.stack([*columns, mu], axis=-1)
    readings = np.where(used, area, 0.0)  # channels that do not enter may hold anything
    _, first, second = log_likelihood_derivatives(
        readings, mu, lce_map.spe_resolution, lce_map.p_dpe, sigma0
    )
    weight = np.where(used, np.maximum(-second, _MIN_CURVATURE / (1.0 + mu)), 0.0)
    first = np.where(used, first, 0.0)

    n_events, n_parameters, n_profiled = len(area), fisher.shape[1], jacobian.shape[2]
    cross = np.zeros((n_events, n_parameters, n_profiled))
    profiled_curvature = np.zeros((n_events, n_profiled, n_profiled))
    profiled_gradient = np.zeros((n_events, n_profiled))
    mismatch = np.zeros(fisher.shape[0])
    splines = tuple(
        item
        for name in ("direct", "shadow", "reflection")
        for item in (state["values"][name], state["steps"][name])
    )
    features = structural_features(lce_map, x, y, dtype=np.float64)
    _accumulate(
        features,
        used,
        n_photons,
        jacobian,
        first,
        weight,
        state["efficiency"],
        state["floor"],
        splines,
        _offsets(state),
        fisher,
        gradient,
        cross,
        profiled_curvature,
        profiled_gradient,
        mismatch,
    )

    profiled = cross @ np.linalg.inv(profiled_curvature)  # C_k, (n, P, 3)
    flat_profiled = profiled.transpose(1, 0, 2).reshape(n_parameters, -1)
    flat_cross = cross.transpose(1, 0, 2).reshape(n_parameters, -1)
    correction = flat_profiled @ flat_cross.T
    return correction, np.einsum("nka,na->k", profiled, profiled_gradient), mismatch.max()


def profiled_gauss_newton_step(
    layer,
    lce_map: LCEMap,
    area,
    used,
    x,
    y,
    n_photons,
    *,
    sigma0: float,
    positions: bool = True,
    smoothness: float = 10.0,
    damping: float = 1e-3,
    max_change: float = 0.5,
) -> MapStep:
    """The Gauss-Newton step of the map with each event's (x, y, ln N) profiled out (see
    the module docstring).

    Parameters
    ----------
    layer : lce_plugins.model.StructuralLCE
        The network's layer; it is read, not changed.
    lce_map : LCEMap
        The same network as a map (:meth:`CoEvolution.current_map`): LCE, gradients,
        PMT resolutions and p_dpe.
    area : numpy.ndarray
        Shape (n, 253), float64: observed areas [PE].
    used : numpy.ndarray
        Shape (n, 253), bool: channels that enter the likelihood.
    x, y, n_photons : numpy.ndarray
        Shape (n,): the events' fitted positions [cm] and light [photons], ideally
        maximising the likelihood with this map (the step corrects linearly if not).
    sigma0 : float
        Baseline noise [PE].
    positions : bool
        Profile (x, y, ln N) (True), or ln N alone with the positions held fixed (a
        training without co-evolution).
    smoothness : float
        Weight kappa of the roughness penalty: the step maximises
        ln L - kappa * :meth:`~lce_plugins.model.StructuralLCE.roughness`.
    damping : float
        Levenberg-Marquardt factor lambda at the start.
    max_change : float
        Largest change of a ln eps_j or of ln F that lambda is raised to respect.

    Returns
    -------
    MapStep
    """
    if len(area) == 0:
        raise ValueError("The Gauss-Newton step needs events; got none.")
    state = _layer_state(layer)
    n_parameters = _offsets(state)[-1]
    fisher = np.zeros((numba.get_num_threads(), n_parameters, n_parameters))
    gradient = np.zeros((len(fisher), n_parameters))
    correction, gradient_correction = np.zeros((n_parameters, n_parameters)), 0.0
    mismatch = 0.0
    for start in range(0, len(area), _EVENTS_PER_BLOCK):
        part = slice(start, start + _EVENTS_PER_BLOCK)
        events = (area[part], used[part], x[part], y[part], n_photons[part])
        block = _block_terms(lce_map, state, events, sigma0, positions, fisher, gradient)
        correction += block[0]
        gradient_correction = gradient_correction + block[1]
        mismatch = max(mismatch, block[2])
    if mismatch > 1e-4:
        raise RuntimeError(
            f"The Gauss-Newton model of the LCE differs from the map by up to {mismatch:.2g} "
            "(relative): lce_map is not the network of `layer`."
        )

    curvature = fisher.sum(axis=0) - correction
    total_gradient = gradient.sum(axis=0) - gradient_correction
    _add_roughness(state, smoothness, curvature, total_gradient)
    return _solve(state, curvature, total_gradient, damping, max_change, len(area))


def _second_differences(n_knots: int) -> np.ndarray:
    """The (n - 2, n) matrix of second differences."""
    matrix = np.zeros((n_knots - 2, n_knots))
    rows = np.arange(n_knots - 2)
    matrix[rows, rows], matrix[rows, rows + 1], matrix[rows, rows + 2] = 1.0, -2.0, 1.0
    return matrix


def _add_roughness(state: dict, smoothness: float, curvature, gradient) -> None:
    """Add the roughness penalty of S and W - smoothness times a quadratic form in their
    natural coordinates theta (logit of S, ln W; see StructuralLCE.roughness) - to the
    system in knot values v, in place: gradient -J^T K theta, Gauss-Newton curvature
    J^T K J, with J = d theta / d v diagonal."""
    offsets = _offsets(state)
    for block, name in enumerate(("shadow", "reflection")):
        values = state["values"][name]
        derivative = 1.0 / (values * (1.0 - values)) if name == "shadow" else 1.0 / values
        differences = _second_differences(values.size)
        penalty = smoothness / state["steps"][name] ** 3 * differences.T @ differences
        part = slice(offsets[block], offsets[block + 1])
        curvature[part, part] += derivative[:, None] * penalty * derivative[None, :]
        gradient[part] -= derivative * (penalty @ state["natural"][name])


def _efficiency_jacobian(state: dict) -> np.ndarray:
    """d(ln eps) / d(efficiency weights r): ln eps_j = r_j - ln(mean over live PMTs of e^r).

    The step moves the efficiencies through r, for which a common shift changes nothing,
    so that it cannot count on one (the events' light carries the scale).
    """
    share = np.where(state["live"], np.exp(state["efficiency_raw"]), 0.0)
    return np.eye(share.size) - (share / share.sum())[None, :]


def _solve(state, curvature, gradient, damping, max_change, n_events) -> MapStep:
    """Solve (H + lambda diag H) delta = g with the efficiencies' rows carried to their
    weights; lambda starts at ``damping`` and rises tenfold until no ln eps_j and not
    ln F changes by more than ``max_change`` (up to 1e3; beyond, the step is scaled)."""
    offsets = _offsets(state)
    efficiency = slice(offsets[2], offsets[3])
    jacobian = np.eye(offsets[-1])
    jacobian[efficiency, efficiency] = _efficiency_jacobian(state)
    curvature = jacobian.T @ curvature @ jacobian
    gradient = jacobian.T @ gradient
    diagonal = np.diag(curvature)
    active = diagonal > 1e-12 * diagonal.max()
    reduced = curvature[np.ix_(active, active)]

    step, factor = np.zeros_like(gradient), damping
    while True:
        step[active] = np.linalg.solve(
            reduced + factor * np.diag(diagonal[active]), gradient[active]
        )
        change = np.max(np.abs((jacobian @ step)[offsets[2] :]))
        if change <= max_change or factor >= _MAX_DAMPING:
            break
        factor *= 10.0
    if change > max_change:
        step *= max_change / change
    log.debug(
        "Gauss-Newton step on %d events: lambda %.0e, largest change of ln eps or ln F %.3g",
        n_events,
        factor,
        change,
    )

    gain = float(gradient @ step - 0.5 * step @ curvature @ step)
    delta = {name: step[offsets[i] : offsets[i + 1]] for i, name in enumerate(BLOCKS)}
    return MapStep(delta=delta, expected_gain=gain, n_events=n_events)


def _inside(values: np.ndarray, delta: np.ndarray, upper: float | None) -> np.ndarray:
    """values + delta, but never past 90 % of the way to a bound (0, and ``upper``)."""
    moved = np.maximum(values + delta, 0.1 * values)
    return moved if upper is None else np.minimum(moved, upper - 0.1 * (upper - values))


def apply_step(layer, step: MapStep) -> None:
    """Add ``step`` to the layer: to the knot values of S and W (kept inside their
    ranges), the efficiency weights and ln F."""
    state = _layer_state(layer)
    for name, upper in (("shadow", 1.0), ("reflection", None)):
        values = _inside(state["values"][name], step.delta[name], upper)
        getattr(layer, name).set_knot_values(values)
    efficiency = state["efficiency_raw"] + step.delta["efficiency"]
    layer.efficiency_raw.assign(efficiency.astype("float32"))
    layer.floor_raw.assign(np.float32(state["floor_raw"] + step.delta["floor"][0]))
