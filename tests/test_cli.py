import json

import numpy as np

from lce_plugins.cli import simulate_main


def test_lce_simulate_writes_training_input_summary_and_plot(tmp_path, capsys):
    assert (
        simulate_main(["--n-events", "400", "--seed", "3", "--out", str(tmp_path), "--quiet"]) == 0
    )
    printed = capsys.readouterr().out
    assert "Synthetic Kr83m run: 400 S2s" in printed
    data = np.load(tmp_path / "kr83m_synthetic.npz")
    assert data["area_per_channel"].shape == (400, 253)
    assert data["x"].shape == data["y"].shape == (400,)
    assert len(data["dead_pmts"]) == 7
    summary = json.loads((tmp_path / "simulation_summary.json").read_text())
    assert summary["synthetic"] is True and summary["n_events"] == 400
    assert (tmp_path / "nominal_bias.png").stat().st_size > 10_000


def test_lce_simulate_refuses_a_non_positive_event_count(tmp_path, capsys):
    assert simulate_main(["--n-events", "0", "--out", str(tmp_path)]) == 2
    assert "--n-events must be positive" in capsys.readouterr().err
