"""Network updates: Adam steps on the exact likelihood, under distribution strategies."""

import json
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from lce_plugins.features import network_inputs  # noqa: E402
from lce_plugins.model import build_lce_model  # noqa: E402
from lce_plugins.training.network import DecayToFloor, NetworkTrainer, make_strategy  # noqa: E402

pytestmark = pytest.mark.slow

TWO_CPU_SCRIPT = """
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from lce_plugins.features import network_inputs
from lce_plugins.model import build_lce_model
from lce_plugins.simulation import nominal_map, simulate_kr83m
from lce_plugins.training.api import train
from lce_plugins.training.network import NetworkTrainer, make_strategy

peaks, truth = simulate_kr83m(1536, seed=1)
start = nominal_map()
area = peaks["area_per_channel"][:512, :253].astype(float)
used = np.broadcast_to(start.live_pmts.mask, area.shape).copy()
features = network_inputs(start, truth["x_truth"][:512], truth["y_truth"][:512])
light = truth["n_photons_truth"][:512].astype(float)
result = {}
for name in ("default", "mirrored"):
    strategy = make_strategy(name)
    with strategy.scope():
        model = build_lce_model(start.live_pmts, initial=start)
    trainer = NetworkTrainer(model, strategy, spe_resolution=start.spe_resolution, p_dpe=0.2,
                             sigma0=0.05, batch_size=128, learning_rate=0.01)
    losses = trainer.train_block(features, area, used, light)
    result[name] = dict(losses=losses, replicas=strategy.num_replicas_in_sync,
                        weights=[w.tolist() for w in model.get_weights()])
lce_map, report = train(peaks["area_per_channel"], dead_pmts=start.live_pmts.dead_channels,
                        strategy="mirrored", max_rounds=1, min_rounds=1, batch_size=128,
                        progress=False)
result["train_rounds"] = report["rounds"]
result["train_chi2"] = [report["reduced_chi2"], report["reduced_chi2_initial"]]
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def block(small_run, nominal_response):
    peaks, truth = small_run
    area = peaks["area_per_channel"][:512, :253].astype(float)
    used = np.broadcast_to(nominal_response.live_pmts.mask, area.shape).copy()
    features = network_inputs(nominal_response, truth["x_truth"][:512], truth["y_truth"][:512])
    return features, area, used, truth["n_photons_truth"][:512].astype(float)


def _trainer(start, batch_size=128, learning_rate=0.01):
    strategy = make_strategy(None)
    model = build_lce_model(start.live_pmts, initial=start)
    return NetworkTrainer(
        model,
        strategy,
        spe_resolution=start.spe_resolution,
        p_dpe=0.2,
        sigma0=0.05,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )


def test_steps_lower_the_likelihood_loss(block, nominal_response):
    trainer = _trainer(nominal_response)
    first = trainer.train_block(*block)
    later = [trainer.train_block(*block) for _ in range(3)][-1]
    assert len(first) == 4  # 512 events in batches of 128
    assert np.mean(later) < np.mean(first)


def test_a_block_shorter_than_a_batch_takes_no_step(block, nominal_response):
    trainer = _trainer(nominal_response, batch_size=1024)
    weights = [w.copy() for w in trainer.model.get_weights()]
    assert trainer.train_block(*block) == []
    for before, after in zip(weights, trainer.model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_non_finite_network_inputs_are_refused(block, nominal_response):
    features = block[0].copy()
    features[3, 7, 0] = np.nan
    with pytest.raises(ValueError, match="Network inputs must be finite"):
        _trainer(nominal_response).train_block(features, *block[1:])


def test_the_optimizer_state_round_trips(block, nominal_response):
    trainer = _trainer(nominal_response)
    trainer.train_block(*block)
    saved, weights = trainer.optimizer_state(), trainer.model.get_weights()
    expected = trainer.train_block(*block)
    other = _trainer(nominal_response)
    other.model.set_weights(weights)
    other.restore_optimizer_state(saved)
    np.testing.assert_allclose(other.train_block(*block), expected, rtol=1e-6)


def test_the_learning_rate_falls_per_round_to_its_floor():
    schedule = DecayToFloor(0.05, 0.5, steps_per_round=10, floor=0.01)
    assert float(schedule(0)) == pytest.approx(0.05)
    assert float(schedule(10)) == pytest.approx(0.025)
    assert float(schedule(15)) == pytest.approx(0.05 * 0.5**1.5)
    assert float(schedule(100)) == pytest.approx(0.01)


def test_an_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="Unknown distribution strategy 'tpu'"):
        make_strategy("tpu")


def test_a_mirrored_strategy_on_two_cpu_devices_takes_the_default_strategys_steps():
    result = subprocess.run([sys.executable, "-c", TWO_CPU_SCRIPT], capture_output=True,
                            text=True, check=True)  # fmt: skip
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    assert numbers["mirrored"]["replicas"] == 2
    np.testing.assert_allclose(numbers["mirrored"]["losses"], numbers["default"]["losses"],
                               rtol=1e-6)  # fmt: skip
    for mirrored, default in zip(numbers["mirrored"]["weights"], numbers["default"]["weights"],
                                 strict=True):  # fmt: skip
        np.testing.assert_allclose(mirrored, default, rtol=1e-4, atol=1e-6)
    assert numbers["train_rounds"] == 1
    trained, initial = numbers["train_chi2"]
    assert trained < initial
