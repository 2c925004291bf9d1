"""The physics-constrained LCE network (Keras 3; training only).

The network is the structural model of :mod:`lce_plugins.optics`,

    LCE_j = eps_j [D(rho) S(t) + W(L) S(t')] + F,

with the geometry known exactly and only a few functions learned, shared by all PMTs:

- D, the direct light, non-increasing in the event-PMT distance by construction;
- W, the light reflected off the PTFE wall, non-negative, versus the unfolded path;
- S, the transmission of the anode wires, in (0, 1), versus the slope of the ray across
  the wires (so the direct light is anisotropic along and across the wires);
- F, a diffuse floor, and eps_j, PMT efficiencies normalised to mean 1 over live PMTs,
  which makes the overall scale identifiable (the event light carries it).

Each learned function is a cubic Hermite spline on uniform knots (:class:`HermiteSpline`)
whose knot slopes follow from the knot values (harmonic means of the neighbouring
secants, which keep every interval monotone between its knots). Exported to Numba, the
same cubics become :class:`~lce_plugins.optics.CubicTable` s exactly, so the portable
map reproduces the network to float32 precision. Because the distances to PMTs at known
places carry the position information, the map cannot absorb a distortion of the plane.

The inputs are the four arguments (rho, t, L, t') per event and PMT, scaled to order
one (:func:`lce_plugins.features.network_inputs`), shape (n, 253, 4); the network has
about 1 000 parameters. A free per-PMT residual is not offered: it could absorb exactly
the position distortions the structure rules out.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from lce_plugins import geometry
from lce_plugins.features import FEATURE_SCALES
from lce_plugins.optics import CubicTable, LightResponse

__all__ = [
    "HermiteSpline",
    "StructuralLCE",
    "build_lce_model",
    "first_guess_response",
    "fit_to_response",
    "model_to_response",
    "structural_layer",
]

#: (x_max, knot step) of D [cm], W [cm] and S [slope]: beyond the longest distance
#: (~132 cm), reflected path (~265 cm) and slope in the TPC.
DIRECT_KNOTS = (140.0, 0.5)
REFLECTION_KNOTS = (270.0, 1.0)
SHADOW_KNOTS = (40.0, 0.25)
_SHAPES = ("non_increasing", "positive", "unit_interval")


def _inverse_softplus(y: np.ndarray) -> np.ndarray:
    return np.log(np.expm1(y))


@keras.saving.register_keras_serializable(package="lce_plugins")
class HermiteSpline(keras.layers.Layer):
    """A learned function on [0, x_max]: a cubic Hermite spline on uniform knots.

    The knot values come from the weights through a transform that imposes ``shape``:

    - ``"non_increasing"``: v_0 = exp(w_0), v_k = v_(k-1) exp(-softplus(w_k));
    - ``"positive"``: v_k = exp(w_k);
    - ``"unit_interval"``: v_k = sigmoid(w_k).

    Knot slopes are the harmonic mean of the neighbouring secants where these agree in
    sign, else 0 (Fritsch and Butland, SIAM J. Sci. Stat. Comput. 5 (1984) 300), which
    keeps each interval between its knot values; the slopes at both ends are 0 (the
    functions are even at 0, and continue flat beyond ``x_max``).

    Parameters
    ----------
    x_max : float
        End of the knot range, in the unit of the argument.
    step : float
        Knot spacing; ``x_max`` must be a multiple of it.
    shape : str
        One of ``"non_increasing"``, ``"positive"``, ``"unit_interval"``.
    """

    def __init__(self, x_max: float, step: float, shape: str, **kwargs):
        super().__init__(**kwargs)
        if shape not in _SHAPES:
            raise ValueError(f"shape must be one of {_SHAPES}; got {shape!r}.")
        n_intervals = round(x_max / step)
        if n_intervals < 2 or abs(n_intervals * step - x_max) > 1e-9 * x_max:
            raise ValueError(f"x_max ({x_max}) must be at least two steps ({step}) and a multiple.")
        self.x_max, self.step, self.shape_kind = float(x_max), float(step), shape
        self.n_knots = n_intervals + 1

    def build(self, input_shape=None):
        self.raw = self.add_weight(name="raw", shape=(self.n_knots,), initializer="zeros")

    def knot_values(self):
        """Values at the knots, shape (n_knots,)."""
        if self.shape_kind == "unit_interval":
            return ops.sigmoid(self.raw)
        return ops.exp(self.log_knot_values())

    def log_knot_values(self):
        """ln of :meth:`knot_values` (computed directly for the non-increasing shape, whose
        far knots can be tiny)."""
        if self.shape_kind == "non_increasing":
            drops = ops.softplus(self.raw[1:])
            return self.raw[0] - ops.concatenate([ops.zeros((1,)), ops.cumsum(drops)])
        if self.shape_kind == "positive":
            return self.raw
        return ops.log(ops.sigmoid(self.raw))

    def knot_slopes(self, values):
        """Harmonic-mean slopes at the knots (0 at both ends), shape (n_knots,)."""
        secants = (values[1:] - values[:-1]) / self.step
        left, right = secants[:-1], secants[1:]
        same_sign = left * right > 0.0
        denominator = ops.where(same_sign, left + right, 1.0)
        interior = ops.where(same_sign, 2.0 * left * right / denominator, 0.0)
        return ops.concatenate([ops.zeros((1,)), interior, ops.zeros((1,))])

    def call(self, x):
        values = self.knot_values()
        slopes = self.knot_slopes(values)
        position = ops.clip(x / self.step, 0.0, self.n_knots - 1.0)
        index = ops.cast(ops.clip(ops.floor(position), 0.0, self.n_knots - 2.0), "int32")
        u = position - ops.cast(index, position.dtype)
        v0, v1 = ops.take(values, index), ops.take(values, index + 1)
        m0, m1 = ops.take(slopes, index) * self.step, ops.take(slopes, index + 1) * self.step
        # cubic Hermite basis on [0, 1]
        one_minus = 1.0 - u
        return (
            (1.0 + 2.0 * u) * one_minus * one_minus * v0
            + u * one_minus * one_minus * m0
            + u * u * (3.0 - 2.0 * u) * v1
            - u * u * one_minus * m1
        )

    def set_knot_values(self, values: np.ndarray) -> None:
        """Set the weights so that the knot values approximate ``values`` (n_knots,)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n_knots,):
            raise ValueError(f"Need {self.n_knots} knot values; got shape {values.shape}.")
        if self.shape_kind == "non_increasing":
            monotone = np.minimum.accumulate(np.maximum(values, 1e-30))
            drops = np.maximum(-np.diff(np.log(monotone)), 1e-6)
            raw = np.concatenate([[np.log(monotone[0])], _inverse_softplus(drops)])
        elif self.shape_kind == "positive":
            raw = np.log(np.maximum(values, 1e-30))
        else:
            clipped = np.clip(values, 1e-6, 1.0 - 1e-6)
            raw = np.log(clipped / (1.0 - clipped))
        self.raw.assign(raw.astype("float32"))

    def to_table(self) -> CubicTable:
        """The same cubics as a float64 :class:`CubicTable` for the Numba kernels."""
        values = self.knot_values()
        slopes = np.asarray(ops.convert_to_numpy(self.knot_slopes(values)), dtype=np.float64)
        values = np.asarray(ops.convert_to_numpy(values), dtype=np.float64)
        secants = np.diff(values) / self.step
        c2 = (3.0 * secants - 2.0 * slopes[:-1] - slopes[1:]) / self.step
        c3 = (slopes[:-1] + slopes[1:] - 2.0 * secants) / self.step**2
        return CubicTable(self.step, np.stack([values[:-1], slopes[:-1], c2, c3], axis=1))

    def get_config(self):
        return {**super().get_config(), "x_max": self.x_max, "step": self.step,
                "shape": self.shape_kind}  # fmt: skip


@keras.saving.register_keras_serializable(package="lce_plugins")
class StructuralLCE(keras.layers.Layer):
    """LCE of every top PMT from the structural features: eps [D S + W S'] + F.

    Input shape (batch, n_pmts, 4): (rho, t, L, t') divided by
    :data:`lce_plugins.features.FEATURE_SCALES` (:func:`~lce_plugins.features.network_inputs`);
    output (batch, n_pmts).

    Parameters
    ----------
    dead_channels : sequence of int
        Dead top PMTs; the efficiencies are normalised to mean 1 over the others.
    n_pmts : int
        Top PMTs.
    """

    def __init__(self, dead_channels=(), n_pmts: int = geometry.N_TOP_PMTS, **kwargs):
        super().__init__(**kwargs)
        self.dead_channels = tuple(int(c) for c in dead_channels)
        self.n_pmts = int(n_pmts)
        live = np.ones(self.n_pmts, dtype="float32")
        live[list(self.dead_channels)] = 0.0
        self._live = live
        self.direct = HermiteSpline(*DIRECT_KNOTS, "non_increasing", name="direct")
        self.reflection = HermiteSpline(*REFLECTION_KNOTS, "positive", name="reflection")
        self.shadow = HermiteSpline(*SHADOW_KNOTS, "unit_interval", name="shadow")

    def build(self, input_shape=None):
        for spline in (self.direct, self.reflection, self.shadow):
            spline.build()
        self.efficiency_raw = self.add_weight(
            name="efficiency_raw", shape=(self.n_pmts,), initializer="zeros"
        )
        self.floor_raw = self.add_weight(name="floor_raw", shape=(), initializer="zeros")

    def efficiency(self):
        """PMT efficiencies, mean 1 over live PMTs, shape (n_pmts,)."""
        positive = ops.exp(self.efficiency_raw)
        live = ops.convert_to_tensor(self._live)
        return positive / (ops.sum(positive * live) / ops.sum(live))

    def floor(self):
        """The diffuse floor (scalar)."""
        return ops.exp(self.floor_raw)

    def call(self, inputs):
        # the inputs are scaled to order one; the splines take physical arguments
        distance, slope = inputs[..., 0] * FEATURE_SCALES[0], inputs[..., 1] * FEATURE_SCALES[1]
        path = inputs[..., 2] * FEATURE_SCALES[2]
        reflected_slope = inputs[..., 3] * FEATURE_SCALES[3]
        light = self.direct(distance) * self.shadow(slope)
        light += self.reflection(path) * self.shadow(reflected_slope)
        return self.efficiency() * light + self.floor()

    def natural_coordinates(self) -> dict:
        """Each learned function's knots in the coordinates where it is smooth: ln of the
        knot values of D and W, the logit of those of S (its weights)."""
        return dict(direct=self.direct.log_knot_values(), shadow=self.shadow.raw,
                    reflection=self.reflection.raw)  # fmt: skip

    def roughness(self):
        """Half the integral of the squared second derivative of each learned function in
        its :meth:`natural_coordinates`, from second differences of the knots (spacing h:
        sum (Delta^2 theta)^2 / h^3), in the units of the functions' arguments (cm for D
        and W). The training penalises it (P-splines: Eilers and Marx, Statist. Sci. 11
        (1996) 89): it keeps knots that the data barely see - near zero distance, at the
        longest paths and steepest slopes - on a smooth continuation of their
        neighbours, and leaves smooth functions alone."""
        total = 0.0
        for name, knots in self.natural_coordinates().items():
            second = knots[2:] - 2.0 * knots[1:-1] + knots[:-2]
            total = total + 0.5 * ops.sum(second * second) / getattr(self, name).step ** 3
        return total

    def set_from_response(self, response: LightResponse, max_transmission: float = 1.0) -> None:
        """Start from another response: its functions sampled at the knots.

        ``max_transmission`` caps the wire transmission S at the start. A response
        without wires has S = 1, where the sigmoid of S is flat and its weights sit far
        out (an optimiser moving them by a fixed step needs hundreds of steps before S
        can change); a cap such as 0.97 leaves S free to be learned.
        """
        for spline, table in ((self.direct, response.direct),
                              (self.reflection, response.reflection),
                              (self.shadow, response.shadow)):  # fmt: skip
            values = table(np.arange(spline.n_knots) * spline.step)
            if spline is self.shadow:
                values = np.minimum(values, max_transmission)
            spline.set_knot_values(values)
        efficiency = np.maximum(np.asarray(response.efficiency, dtype=np.float64), 1e-6)
        self.efficiency_raw.assign(np.log(efficiency).astype("float32"))
        self.floor_raw.assign(np.float32(np.log(max(response.floor, 1e-30))))

    def get_config(self):
        return {**super().get_config(), "dead_channels": list(self.dead_channels),
                "n_pmts": self.n_pmts}  # fmt: skip


def first_guess_response(live_pmts: geometry.LivePMTs) -> LightResponse:
    """A start that knows only the geometry: point-like photocathodes, no wires.

    D(rho) = PDE / 4 pi * pi a**2 H / (H**2 + rho**2)**1.5 (the solid angle of a small
    disk of radius a at height H, photon detection efficiency 0.3), W = 0.3 D, S = 0.95,
    equal efficiencies and a floor of 1e-5.
    """
    height, radius = geometry.EMISSION_TO_PMT_WINDOW_CM, geometry.PHOTOCATHODE_RADIUS_CM
    step = 0.1
    distance = np.arange(0.0, REFLECTION_KNOTS[0] + step / 2, step)
    direct = 0.3 / 4.0 * radius**2 * height / (height**2 + distance**2) ** 1.5
    return LightResponse(
        direct=CubicTable.from_samples(direct, step),
        reflection=CubicTable.from_samples(0.3 * direct, step),
        shadow=CubicTable.constant(0.95),
        efficiency=np.ones(geometry.N_TOP_PMTS),
        floor=1e-5,
        live_pmts=live_pmts,
        name="first guess",
    )


def build_lce_model(
    live_pmts: geometry.LivePMTs,
    initial: LightResponse | None = None,
    *,
    max_initial_transmission: float = 1.0,
) -> keras.Model:
    """The LCE network: scaled features (n, 253, 4) in, LCE (n, 253) out.

    Parameters
    ----------
    live_pmts : LivePMTs
        Dead PMTs are left out of the efficiency normalisation.
    initial : LightResponse, optional
        Start from this response (e.g. the nominal map); otherwise all weights are 0.
        The model has no random initialisation, so it is the same for any seed.
    max_initial_transmission : float
        Cap of the initial wire transmission (see :meth:`StructuralLCE.set_from_response`).
    """
    if not isinstance(live_pmts, geometry.LivePMTs):
        raise TypeError(f"live_pmts must be a LivePMTs; got {type(live_pmts).__name__}.")
    features = keras.Input(shape=(geometry.N_TOP_PMTS, 4), name="features", dtype="float32")
    layer = StructuralLCE(dead_channels=live_pmts.dead_channels, name="structural_lce")
    model = keras.Model(features, layer(features), name="lce_model")
    if initial is not None:
        layer.set_from_response(initial, max_initial_transmission)
    return model


def structural_layer(model: keras.Model) -> StructuralLCE:
    """The :class:`StructuralLCE` layer of a model made by :func:`build_lce_model`."""
    layers = [layer for layer in model.layers if isinstance(layer, StructuralLCE)]
    if len(layers) != 1:
        raise ValueError(f"Expected one StructuralLCE layer in the model; found {len(layers)}.")
    return layers[0]


def model_to_response(model: keras.Model, name: str = "learned") -> LightResponse:
    """The network as a :class:`LightResponse`: the same cubics, evaluated in Numba."""
    layer = structural_layer(model)
    live = np.ones(layer.n_pmts, dtype=bool)
    live[list(layer.dead_channels)] = False
    return LightResponse(
        direct=layer.direct.to_table(),
        reflection=layer.reflection.to_table(),
        shadow=layer.shadow.to_table(),
        efficiency=np.asarray(ops.convert_to_numpy(layer.efficiency()), dtype=np.float64),
        floor=float(ops.convert_to_numpy(layer.floor())),
        live_pmts=geometry.LivePMTs(live),
        name=name,
    )


def _flat_weights(model: keras.Model) -> tuple[list, np.ndarray]:
    variables = list(model.trainable_variables)
    return variables, np.concatenate([np.ravel(v.numpy()) for v in variables]).astype(float)


def _assign_flat(variables: list, theta: np.ndarray) -> None:
    start = 0
    for variable in variables:
        size = int(np.prod(variable.shape))
        variable.assign(theta[start : start + size].reshape(variable.shape).astype("float32"))
        start += size


def fit_to_response(
    model: keras.Model,
    features: np.ndarray,
    target_lce: np.ndarray,
    *,
    max_iterations: int = 800,
) -> dict:
    """Fit the network to a known LCE (no noise), e.g. to start from another map.

    Minimises the mean squared log ratio of predicted to target LCE over live PMTs with
    SciPy's L-BFGS-B; loss and gradient come from one XLA-compiled TensorFlow function.

    Parameters
    ----------
    model : keras.Model
        From :func:`build_lce_model`; its weights are updated in place.
    features : numpy.ndarray
        Shape (n, 253, 4), :func:`lce_plugins.features.network_inputs`.
    target_lce : numpy.ndarray
        Shape (n, 253), positive.
    max_iterations : int
        L-BFGS iterations.

    Returns
    -------
    dict
        ``loss`` (final mean squared log ratio), ``iterations``, ``message``.
    """
    import tensorflow as tf
    from scipy import optimize

    layer = structural_layer(model)
    live = np.ones(layer.n_pmts, dtype="float32")
    live[list(layer.dead_channels)] = 0.0
    target = np.asarray(target_lce, dtype=np.float64)
    if target.shape != features.shape[:2] or not np.all(target[:, live > 0] > 0):
        raise ValueError(f"target_lce must be positive with shape {features.shape[:2]}.")
    inputs = tf.constant(np.asarray(features, dtype="float32"))
    log_target = tf.constant(np.log(np.maximum(target, 1e-30)).astype("float32"))
    weight = tf.constant(live / (live.sum() * len(target)))
    variables, theta = _flat_weights(model)

    @tf.function(jit_compile=True)
    def loss_and_gradient():
        with tf.GradientTape() as tape:
            log_ratio = tf.math.log(model(inputs)) - log_target
            loss = tf.reduce_sum(log_ratio * log_ratio * weight)
        return loss, tape.gradient(loss, variables)

    def objective(parameters):
        _assign_flat(variables, parameters)
        loss, gradients = loss_and_gradient()
        flat = np.concatenate([np.ravel(g.numpy()) for g in gradients]).astype(float)
        return float(loss), flat

    result = optimize.minimize(
        objective, theta, jac=True, method="L-BFGS-B",
        options=dict(maxiter=max_iterations, maxcor=30, ftol=1e-15, gtol=1e-12),
    )  # fmt: skip
    _assign_flat(variables, result.x)
    return dict(loss=float(result.fun), iterations=int(result.nit), message=str(result.message))
