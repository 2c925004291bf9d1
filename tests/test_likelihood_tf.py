"""Tests of the TensorFlow bridge of the PMT likelihood (slow: they import TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from lce_plugins.likelihood import log_likelihood

pytestmark = pytest.mark.slow

tf = pytest.importorskip("tensorflow")
from lce_plugins.likelihood.tf_bridge import negative_log_likelihood  # noqa: E402

AREA = np.array([[0.0, 0.9, 3.1, 41.0, 260.0], [0.2, 2.2, 0.0, 12.0, 900.0]])
MU = np.array([[0.1, 1.0, 2.5, 35.0, 220.0], [0.4, 1.5, 0.7, 10.0, 760.0]])
SIGMA = np.array([0.3, 0.4, 0.5, 0.35, 0.6])


def _finite_difference_gradient(mu, live):
    gradient = np.zeros_like(mu)
    for index in np.ndindex(mu.shape):
        step = 1e-6 * mu[index]
        up, down = mu.copy(), mu.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = -(
            np.sum(log_likelihood(AREA, up, SIGMA), where=live)
            - np.sum(log_likelihood(AREA, down, SIGMA), where=live)
        ) / (2 * step)
    return gradient


def test_loss_is_the_summed_negative_log_likelihood():
    loss = negative_log_likelihood(AREA, tf.constant(MU), SIGMA)
    assert float(loss) == pytest.approx(-log_likelihood(AREA, MU, SIGMA).sum(), rel=1e-14)


def test_gradient_under_a_tape_equals_finite_differences():
    mu = tf.Variable(MU)
    with tf.GradientTape() as tape:
        loss = negative_log_likelihood(AREA, mu, SIGMA)
    gradient = tape.gradient(loss, mu).numpy()
    expected = _finite_difference_gradient(MU, np.ones(MU.shape, bool))
    np.testing.assert_allclose(gradient, expected, rtol=1e-6, atol=1e-8)


def test_gradient_inside_tf_function_in_float32_skips_dead_pmts():
    live = np.array([True, True, False, True, True])

    @tf.function
    def gradient_of(mu):
        with tf.GradientTape() as tape:
            tape.watch(mu)
            loss = 2.0 * negative_log_likelihood(AREA, mu, SIGMA, live=live)
        return tape.gradient(loss, mu)

    gradient = gradient_of(tf.constant(MU, dtype=tf.float32))
    assert gradient.dtype == tf.float32
    expected = 2.0 * _finite_difference_gradient(MU, np.broadcast_to(live, MU.shape))
    np.testing.assert_allclose(gradient.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert np.all(gradient.numpy()[:, 2] == 0.0)


def test_bad_input_raises_when_the_loss_runs():
    # eagerly the kernel's ValueError comes through; inside tf.function, a tf error
    with pytest.raises(ValueError, match="must be >= 0"):
        negative_log_likelihood(AREA, tf.constant(-MU), SIGMA)
    with pytest.raises(tf.errors.OpError, match="must be >= 0"):
        tf.function(lambda mu: negative_log_likelihood(AREA, mu, SIGMA))(tf.constant(-MU))
    with pytest.raises(ValueError, match="shape \\(n_events, n_pmts\\)"):
        negative_log_likelihood(AREA[0], tf.constant(MU[0]), SIGMA)


def test_areas_and_per_event_masks_may_be_graph_tensors():
    # distributed training hands each replica its batch as symbolic tensors
    live = np.ones(MU.shape, bool)
    live[0, 1] = False

    @tf.function
    def loss_of(area, mu, used):
        return negative_log_likelihood(area, mu, SIGMA, live=used)

    loss = loss_of(tf.constant(AREA), tf.constant(MU), tf.constant(live))
    expected = -log_likelihood(AREA, MU, SIGMA)[live].sum()
    assert float(loss) == pytest.approx(expected, rel=1e-12)


def test_a_mask_of_the_wrong_shape_is_rejected_when_the_loss_runs():
    with pytest.raises(ValueError, match="live must have shape"):
        negative_log_likelihood(AREA, tf.constant(MU), SIGMA, live=np.ones(3, bool))
