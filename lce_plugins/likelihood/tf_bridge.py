"""The PMT likelihood inside TensorFlow training: a loss with a Numba-computed gradient.

The only module of the package that imports TensorFlow; import it only where training
happens. :func:`negative_log_likelihood` runs the exact likelihood of
:mod:`lce_plugins.likelihood` through ``tf.numpy_function`` and hands TensorFlow its
gradient with respect to ``mu`` through ``tf.custom_gradient``, so that it works under
``tf.GradientTape`` (eagerly and inside ``tf.function``) while the sums stay in Numba.

Only the first derivative is provided: gradients of gradients (Hessians through the
tape) are not supported. ``area``, ``sigma`` and ``live`` are data, not variables: no
gradient flows to them.

>>> import tensorflow as tf                                   # doctest: +SKIP
>>> mu = tf.Variable([[1.0, 2.5]], dtype=tf.float64)          # doctest: +SKIP
>>> with tf.GradientTape() as tape:                           # doctest: +SKIP
...     loss = negative_log_likelihood([[0.9, 3.1]], mu, 0.4)
>>> tape.gradient(loss, mu)                                   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from lce_plugins.geometry import LivePMTs
from lce_plugins.likelihood._checks import live_mask
from lce_plugins.likelihood.api import log_likelihood_derivatives
from lce_plugins.pmt_response import DEFAULT_BASELINE_NOISE_PE, DEFAULT_P_DPE

__all__ = ["negative_log_likelihood"]


def _value_and_gradient(area, mu, sigma, live, p_dpe, sigma0):
    """-sum(live ln L) and its gradient in mu, as numpy (runs outside the graph)."""
    live = live_mask(live, area.shape)
    value, first, _ = log_likelihood_derivatives(area, mu, sigma, p_dpe, sigma0)
    loss = -np.sum(value, where=live)
    gradient = np.where(live, -first, 0.0)
    return np.float64(loss), gradient.astype(mu.dtype)


def _as_data_tensor(name: str, values, dtype) -> tf.Tensor:
    """``values`` as a constant tensor (checked now) or a graph tensor (checked when run)."""
    if tf.is_tensor(values):
        return tf.cast(values, dtype)
    return tf.constant(np.asarray(values), dtype=dtype, name=name)


def negative_log_likelihood(
    area,
    mu,
    sigma,
    p_dpe: float = DEFAULT_P_DPE,
    sigma0: float = DEFAULT_BASELINE_NOISE_PE,
    live=None,
) -> tf.Tensor:
    """-sum ln L(area | mu) over a batch, differentiable in ``mu``.

    Parameters
    ----------
    area : array_like or tf.Tensor, shape (n_events, n_pmts)
        Observed areas [PE] (finite where live). A tensor may be symbolic (e.g. a
        batch inside ``tf.function`` or a distribution strategy's replica).
    mu : tf.Tensor, shape (n_events, n_pmts), float32 or float64
        Expected detected photons (>= 0), e.g. light times the network's LCE.
    sigma : array_like, shape (n_pmts,) or scalar
        Single-PE resolutions [PE].
    p_dpe, sigma0 : float
        Double-PE probability and baseline noise [PE].
    live : None, LivePMTs, array_like or tf.Tensor of bool
        PMTs that enter the sum (shape (n_pmts,) or (n_events, n_pmts)).

    Returns
    -------
    tf.Tensor
        Scalar float64 loss. Its gradient with respect to ``mu`` is -d ln L / dmu from
        the Numba kernel (0 for PMTs that are not live), in ``mu``'s dtype. Bad input
        (negative mu, NaN areas) raises the ValueError of
        :func:`~lce_plugins.likelihood.log_likelihood` when the loss runs eagerly, and
        a ``tf.errors.OpError`` with the same message inside ``tf.function``.
    """
    mu = tf.convert_to_tensor(mu)
    area = _as_data_tensor("area", area, tf.float64)
    if area.shape.rank != 2:
        raise ValueError(f"area must have shape (n_events, n_pmts); got {tuple(area.shape)}.")
    n_pmts = area.shape[1]
    if live is None or isinstance(live, LivePMTs):
        # a (n_pmts,) mask; every mask's shape is checked when the loss runs
        live = live_mask(live, (1, n_pmts))[0]
    live = _as_data_tensor("live", live, tf.bool)
    sigma_values = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (n_pmts,))
    p_dpe, sigma0 = float(p_dpe), float(sigma0)

    @tf.custom_gradient
    def _loss(expected):
        value, gradient = tf.numpy_function(
            lambda m, a, used: _value_and_gradient(a, m, sigma_values, used, p_dpe, sigma0),
            [expected, area, live],
            [tf.float64, expected.dtype],
            stateful=False,
        )
        value = tf.reshape(value, [])
        gradient = tf.reshape(gradient, tf.shape(expected))

        def backward(upstream):
            return tf.cast(upstream, gradient.dtype) * gradient

        return value, backward

    return _loss(mu)
