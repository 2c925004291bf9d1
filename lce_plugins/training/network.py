"""Network updates of the co-evolution: mini-batch Adam on the exact PMT likelihood.

With the positions and light of a block of events held at their current values, the
network's parameters move down the summed negative log-likelihood
``-sum_k sum_j ln L(a_kj | N_k LCE_j(x_k, y_k))`` over used PMTs (live and not
saturated), one mini-batch per step. The likelihood and its gradient in the expected
photons come from the Numba kernels through
:func:`lce_plugins.likelihood.tf_bridge.negative_log_likelihood`; TensorFlow
differentiates the network. The same code runs with TensorFlow's default strategy or a
distribution strategy (e.g. ``MirroredStrategy`` over several devices), which splits
each batch over its replicas.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from lce_plugins.likelihood.tf_bridge import negative_log_likelihood
from lce_plugins.model import structural_layer
from lce_plugins.training.options import STRATEGIES

__all__ = ["DecayToFloor", "NetworkTrainer", "make_strategy"]

log = logging.getLogger(__name__)


def make_strategy(name: str | None) -> tf.distribute.Strategy:
    """TensorFlow's default strategy (``None`` or ``"default"``) or a ``MirroredStrategy``
    over all visible devices of one kind (GPUs if there are any, else CPUs)."""
    if name in (None, "default"):
        return tf.distribute.get_strategy()
    if name != "mirrored":
        raise ValueError(f"Unknown distribution strategy {name!r}; expected one of {STRATEGIES}.")
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
    log.info("MirroredStrategy over %d device(s)", strategy.num_replicas_in_sync)
    return strategy


@keras.saving.register_keras_serializable(package="lce_plugins")
class DecayToFloor(keras.optimizers.schedules.LearningRateSchedule):
    """``max(initial * decay ** (step / steps_per_round), floor)``: a smooth exponential
    fall per round of the training, never below ``floor``.

    A function of the step count alone, so a resumed training continues on the same
    schedule.
    """

    def __init__(self, initial: float, decay: float, steps_per_round: int, floor: float):
        self.initial, self.decay = float(initial), float(decay)
        self.steps_per_round, self.floor = int(steps_per_round), float(floor)

    def __call__(self, step):
        rounds = tf.cast(step, tf.float32) / float(self.steps_per_round)
        return tf.maximum(self.initial * tf.pow(self.decay, rounds), self.floor)

    def get_config(self):
        return dict(initial=self.initial, decay=self.decay,
                    steps_per_round=self.steps_per_round, floor=self.floor)  # fmt: skip


class NetworkTrainer:
    """Adam steps of one model under one strategy, a block of events at a time.

    Parameters
    ----------
    model : keras.Model
        From :func:`lce_plugins.model.build_lce_model`, built under ``strategy.scope()``.
    strategy : tf.distribute.Strategy
    spe_resolution : numpy.ndarray
        Shape (253,), single-PE resolutions [PE].
    p_dpe, sigma0 : float
        Double-PE probability and baseline noise [PE].
    batch_size : int
        Events per step (over all replicas together).
    learning_rate : float or keras.optimizers.schedules.LearningRateSchedule
        Adam's step size.
    roughness_weight : float
        Adds ``roughness_weight * StructuralLCE.roughness()`` to each step's loss (the
        mean negative ln L per event): the training's smoothness penalty spread over the
        events, kappa / n_events.
    """

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy, *,
                 spe_resolution: np.ndarray, p_dpe: float, sigma0: float, batch_size: int,
                 learning_rate, roughness_weight: float = 0.0):  # fmt: skip
        self.model, self.strategy = model, strategy
        self.roughness_weight = float(roughness_weight)
        self.batch_size = int(batch_size)
        self._likelihood = dict(sigma=np.asarray(spe_resolution, dtype=np.float64),
                                p_dpe=float(p_dpe), sigma0=float(sigma0))  # fmt: skip
        with strategy.scope():
            self.optimizer = keras.optimizers.Adam(learning_rate)
            self.optimizer.build(model.trainable_variables)
        self._step = self._step_function()

    def _step_function(self):
        model, optimizer, batch_size = self.model, self.optimizer, self.batch_size
        likelihood = self._likelihood
        layer = structural_layer(model)
        # each replica adds its share, so that the summed loss holds the penalty once
        roughness_weight = self.roughness_weight / self.strategy.num_replicas_in_sync

        def replica_step(features, area, used, n_photons):
            with tf.GradientTape() as tape:
                lce = tf.cast(model(features, training=True), tf.float64)
                expected = lce * n_photons[:, None]
                loss = negative_log_likelihood(area, expected, live=used, **likelihood)
                # mean over the global batch, so that replicas' gradients add up to it
                loss = loss / batch_size
                if roughness_weight:
                    loss += roughness_weight * tf.cast(layer.roughness(), loss.dtype)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
            return loss

        @tf.function
        def step(batch):
            per_replica = self.strategy.run(replica_step, args=batch)
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        return step

    def train_block(self, features, area, used, n_photons) -> list[float]:
        """One Adam step per full batch of the block, in the order given.

        Parameters
        ----------
        features : numpy.ndarray
            Shape (m, 253, 4), float32: :func:`lce_plugins.features.network_inputs`;
            must be finite.
        area : numpy.ndarray
            Shape (m, 253), float64: observed areas [PE].
        used : numpy.ndarray
            Shape (m, 253), bool: PMTs that enter the likelihood.
        n_photons : numpy.ndarray
            Shape (m,), float64: each event's light (expected photons per unit LCE).

        Returns
        -------
        list of float
            Mean negative log-likelihood per event of each step; events beyond the last
            full batch are left out.
        """
        if not np.all(np.isfinite(features)):
            raise ValueError("Network inputs must be finite: positions outside the TPC?")
        dataset = tf.data.Dataset.from_tensor_slices((features, area, used, n_photons)).batch(
            self.batch_size, drop_remainder=True
        )
        return [float(self._step(batch))
                for batch in self.strategy.experimental_distribute_dataset(dataset)]  # fmt: skip

    def optimizer_state(self) -> list[np.ndarray]:
        """Adam's variables (step count and moments) as NumPy arrays, for checkpoints."""
        return [np.array(variable.numpy()) for variable in self.optimizer.variables]

    def restore_optimizer_state(self, values: list[np.ndarray]) -> None:
        """Set Adam's variables from :meth:`optimizer_state`."""
        variables = self.optimizer.variables
        if len(values) != len(variables):
            raise ValueError(f"Checkpoint has {len(values)} optimizer variables; Adam has "
                             f"{len(variables)} for this model.")  # fmt: skip
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
