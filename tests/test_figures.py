"""The README's Figures section is rendered from benchmark JSON, between its markers only."""

import json

import pytest

from benchmarks.figures import END, START, load_results, render, update_readme

UNET = {
    "benchmark": "unet_vs_peers",
    "date": "2026-01-02T03:04:05+00:00",
    "command": "python -m benchmarks.unet_vs_peers",
    "machine": {"cpu_model": "Test CPU", "threads": 2, "torch": "2.11.0", "native_bf16": False, "load_average": [0.1, 0, 0]},
    "results": [
        {"name": "ours", "dims": 2, "precision": "fp32", "input": [32, 1, 80, 64], "parameters": 6_500_000,
         "parameters_vs_ours": 0.0, "train_steps_per_s": 1.5, "sample_ms_per_step": 200.0},
        {"name": "peer", "dims": 2, "precision": "fp32", "input": [32, 1, 80, 64], "parameters": 6_200_000,
         "parameters_vs_ours": -0.046, "train_steps_per_s": 0.5, "sample_ms_per_step": 600.0},
    ],
    "summary": [{"dims": 2, "precision": "fp32", "fastest_peer_train": "peer", "train_speedup": 3.0,
                 "fastest_peer_sample": "peer", "sample_speedup": 3.0, "target": 1.5, "target_met": True}],
    "not_run": [{"name": "gone", "dims": 1, "error": "ImportError: no module named gone"}],
}
SAMPLERS = {
    "benchmark": "samplers", "date": "2026-01-02", "command": "python -m benchmarks.samplers",
    "rows": [{"sampler": "ddim", "steps": 4, "curve": True, "frechet": 9.0},
             {"sampler": "ddim", "steps": 8, "curve": True, "frechet": 5.0}],
    "floor": {"frechet": 1.0}, "plot": "samplers.png",
    "target": {"sampler": "dpmpp_2m", "few_steps": 10, "many_steps": 100, "few_frechet": 5.5, "many_frechet": 5.0,
               "relative_gap": 0.1, "allowed_gap": 0.1, "met": False},
}


def test_render_makes_tables_with_machine_date_and_command():
    text = render({"unet_vs_peers": UNET, "samplers": SAMPLERS}, images="benchmarks/results")
    assert "| ours | 1x80x64 | 6.50M (+0.0%) | 1.500 | 200.0 |" in text and "fp32 train steps/s (batch 32)" in text
    assert "3.00x the fastest peer in training (peer)" in text and "not run: gone (dims 1): ImportError" in text
    assert "| ddim | 9.00 | 5.00 |" in text and "**missed**" in text
    assert "![Fréchet distance against steps](benchmarks/results/samplers.png)" in text
    assert "Test CPU, 2 threads" in text and "2026-01-02T03:04:05+00:00" in text and "`python -m benchmarks.unet_vs_peers`" in text


def test_load_results_skips_failed_benchmarks_and_prefers_their_own_files(tmp_path):
    (tmp_path / "all.json").write_text(json.dumps({"benchmarks": {"samplers": SAMPLERS, "end_to_end": {"error": "exit status 1"}}}))
    (tmp_path / "unet_vs_peers.json").write_text(json.dumps(UNET))
    assert sorted(load_results(tmp_path)) == ["samplers", "unet_vs_peers"]


def test_update_readme_replaces_only_the_text_between_the_markers():
    readme = f"# Title\n\nintro\n\n{START}\nold figures\n{END}\n\nafter\n"
    updated = update_readme(readme, "## Figures\nnew\n")
    assert updated == f"# Title\n\nintro\n\n{START}\n## Figures\nnew\n{END}\n\nafter\n"
    assert update_readme(updated, "## Figures\nnew\n") == updated


def test_update_readme_without_markers_says_what_to_add():
    with pytest.raises(ValueError, match="figures:start"):
        update_readme("# no markers\n", "x")


def test_vocoder_fidelity_and_notes_pitch_tables():
    fidelity = {"clips": 20, "targets": "within 1.5x", "results": {"v": {
        "scores": {"frechet_classifier": {"vocoded": 6.0, "floor": 3.0}, "accuracy": {"vocoded": 1.0}},
        "distances_to_original": {"mel_l1": 0.2, "mr_stft": 1.5}, "frechet_over_floor": 2.0}}}
    pitch = {"notes": 8, "targets": "90%", "model": {"source": "notes", "training_step": 5, "within_50_cents": 0.5,
             "unvoiced": 1, "median_abs_cents": 30.0, "family_accuracy": 0.25},
             "real_floor": {"within_50_cents": 1.0, "unvoiced": 0, "median_abs_cents": 4.0, "family_accuracy": 1.0}}
    text = render({"vocoder_fidelity": fidelity, "notes_pitch": pitch})
    assert "| v | 6.00 | 3.00 | 2.0 | 1.000 | 0.200 | 1.500 |" in text
    assert "| model | 0.500 | 1 | 30.0 | 0.250 |" in text and "| real notes | 1.000 | 0 | 4.0 | 1.000 |" in text


def test_own_data_and_threads_render_their_tables():
    own = {"benchmark": "own_data", "date": "2026-01-02", "command": "python -m benchmarks.own_data", "figure": "docs/examples/x.png",
           "real": {"folder": "data/p", "decay_db_median": 30.0},
           "runs": [{"run": "a", "init_from": "notes", "steps": 900, "compute_seconds": 600.0, "final_loss": 0.05, "decay_db_median": 25.5},
                    {"run": "b", "init_from": None, "steps": 950, "compute_seconds": 630.0, "final_loss": 0.2, "decay_db_median": 3.1}]}
    threads = {"benchmark": "threads", "date": "2026-01-02", "command": "python -m benchmarks.threads", "model": "small", "precision": "fp32",
               "rows": [{"busy_cores": b, "threads": t, "seconds_per_step": 0.1 * (t + b)} for b in (0, 1) for t in (1, 2)],
               "fastest_threads": {"0 busy": 2, "1 busy": 1}, "auto_choice": {"0 busy": 2, "1 busy": 1}}
    text = render({"own_data": own, "threads": threads})
    assert "| from notes | 900 | 10.0 | 0.0500 | 25.5 |" in text and "| from scratch | 950 | 10.5 |" in text
    assert "| real clips (the training folder) |  |  |  | 30.0 |" in text and "![Spectrograms" in text
    assert "| 1 busy core(s) | 0.200 | 0.300 |" in text
