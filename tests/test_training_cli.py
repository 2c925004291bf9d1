"""``lce-train`` end to end: its inputs, outputs, registry and resuming after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from lce_plugins import LCEMap  # noqa: E402

pytestmark = pytest.mark.slow

QUICK = ["--max-rounds", "2", "--min-rounds", "1", "--quiet"]


def _command(*args):
    return [sys.executable, "-c",
            "import sys; from lce_plugins.training.cli import train_main; "
            "sys.exit(train_main(sys.argv[1:]))", *map(str, args)]  # fmt: skip


def _lce_train(*args, cwd=None, env=None):
    return subprocess.run(_command(*args), capture_output=True, text=True, cwd=cwd,
                          env=None if env is None else os.environ | env)  # fmt: skip


def _max_difference(first, second):
    x, y = np.meshgrid(np.linspace(-60, 60, 25), np.linspace(-60, 60, 25))
    inside = np.hypot(x, y) < 66
    a, b = (m.lce(x[inside], y[inside]) for m in (first, second))
    return float(np.max(np.abs(a / b - 1)))


def test_a_synthetic_training_writes_its_outputs_prints_headlines_and_registers(tmp_path):
    out = tmp_path / "run"
    result = _lce_train("--synthetic", 1500, "--out", out, "--register", "demo", *QUICK,
                        env=dict(LCE_PLUGINS_MAP_REGISTRY=str(tmp_path / "registry")))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Trained LCE map (synthetic data)" in result.stdout
    assert "held-out reduced chi2 (D/ndf): trained" in result.stdout
    assert "LCE relative RMS against the truth" in result.stdout
    assert "registered as lce://demo" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["synthetic"] and report["n_events_train"] + report["n_events_heldout"] == 1500
    assert (out / "density.png").exists() and (out / "run_config.json").exists()
    registered = LCEMap.load(tmp_path / "registry" / "demo.npz")
    assert registered.content_hash == report["map_content_hash"]


def test_lce_train_reads_the_file_lce_simulate_writes(tmp_path):
    simulate = subprocess.run(
        [sys.executable, "-c", "import sys; from lce_plugins.cli import simulate_main; "
         "sys.exit(simulate_main(sys.argv[1:]))", "--n-events", "1500", "--out",
         str(tmp_path / "sim"), "--no-plots", "--quiet"], capture_output=True, text=True,
    )  # fmt: skip
    assert simulate.returncode == 0, simulate.stderr
    result = _lce_train("--input", tmp_path / "sim" / "kr83m_synthetic.npz", "--out",
                        tmp_path / "run", "--no-plots", *QUICK)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["synthetic"]  # the file carries the simulation's truth
    assert report["reduced_chi2"] < report["reduced_chi2_initial"]


def test_lce_train_reads_s2_peaks_from_a_strax_context(tmp_path):
    (tmp_path / "my_context.py").write_text(
        "import lce_plugins\n"
        "def small():\n"
        f"    return lce_plugins.demo_context({str(tmp_path / 'strax')!r}, n_events=1500, "
        "events_per_chunk=500)\n"
    )  # fmt: skip
    result = _lce_train("--context", "my_context:small", "--run-id", "000007", "--positions",
                        "peak_positions_nominal:x_nominal,y_nominal", "--selection",
                        "area > 100", "--out", tmp_path / "run", "--no-plots", *QUICK,
                        cwd=tmp_path, env=dict(PYTHONPATH=str(tmp_path)))  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert not report["synthetic"]
    assert report["n_events"] == 1500
    assert report["reduced_chi2"] < report["reduced_chi2_initial"]


def _wait_for_round(path, round_number, process, timeout_s=300):
    started = time.monotonic()
    while time.monotonic() - started < timeout_s and process.poll() is None:
        if path.exists():
            with np.load(path) as stored:
                if json.loads(str(stored["metadata"]))["completed_rounds"] >= round_number:
                    return True
        time.sleep(0.2)
    return False


def test_a_training_killed_part_way_and_resumed_ends_with_the_uninterrupted_map(tmp_path):
    arguments = ["--synthetic", 2000, "--max-rounds", 4, "--min-rounds", 4, "--tolerance", 0,
                 "--no-plots", "--quiet"]  # fmt: skip
    whole = _lce_train(*arguments, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(_command(*arguments, "--out", killed_dir),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert _wait_for_round(killed_dir / "checkpoint.npz", 2, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (killed_dir / "lce_map.npz").exists()  # it died before the end
    resumed = _lce_train("--resume", killed_dir, "--quiet")
    assert resumed.returncode == 0, resumed.stderr

    report = json.loads((killed_dir / "report.json").read_text())
    assert report["rounds"] == 4
    maps = [LCEMap.load(path / "lce_map.npz") for path in (tmp_path / "whole", killed_dir)]
    assert _max_difference(*maps) < 1e-4


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--input", "missing.npz"], "cannot read the input"),
        (["--context", "os:getcwd"], "--context needs --run-id"),
        (["--resume", "nowhere"], "no run_config.json there"),
        (["--synthetic", "10"], "at least 100 events"),
    ],
)
def test_bad_command_lines_fail_with_a_message(tmp_path, arguments, message):
    result = _lce_train(*arguments, "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
