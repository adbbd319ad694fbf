"""The Figures section of docs/results.md is rendered from benchmark JSON, between its markers only."""

import json

import pytest

from benchmarks.figures import END, START, load_results, render, section_for, update_page

UNET = {
    "benchmark": "unet_vs_peers",
    "date": "2026-01-02T03:04:05+00:00",
    "command": "python -m benchmarks.unet_vs_peers",
    "machine": {
        "cpu_model": "Test CPU",
        "threads": 2,
        "torch": "2.11.0",
        "native_bf16": False,
        "load_average": [0.1, 0, 0],
    },
    "results": [
        {
            "name": "ours",
            "dims": 2,
            "precision": "fp32",
            "input": [32, 1, 80, 64],
            "parameters": 6_500_000,
            "parameters_vs_ours": 0.0,
            "train_steps_per_s": 1.5,
            "sample_ms_per_step": 200.0,
        },
        {
            "name": "peer",
            "dims": 2,
            "precision": "fp32",
            "input": [32, 1, 80, 64],
            "parameters": 6_200_000,
            "parameters_vs_ours": -0.046,
            "train_steps_per_s": 0.5,
            "sample_ms_per_step": 600.0,
        },
    ],
    "summary": [
        {
            "dims": 2,
            "precision": "fp32",
            "fastest_peer_train": "peer",
            "train_speedup": 3.0,
            "fastest_peer_sample": "peer",
            "sample_speedup": 3.0,
            "target": 1.5,
            "target_met": True,
        }
    ],
    "not_run": [{"name": "gone", "dims": 1, "error": "ImportError: no module named gone"}],
}
SAMPLERS = {
    "benchmark": "samplers",
    "date": "2026-01-02",
    "command": "python -m benchmarks.samplers",
    "rows": [
        {"sampler": "ddim", "steps": 4, "curve": True, "frechet": 9.0},
        {"sampler": "ddim", "steps": 8, "curve": True, "frechet": 5.0},
    ],
    "floor": {"frechet": 1.0},
    "plot": "samplers.png",
    "target": {
        "sampler": "dpmpp_2m",
        "few_steps": 10,
        "many_steps": 100,
        "few_frechet": 5.5,
        "many_frechet": 5.0,
        "relative_gap": 0.1,
        "allowed_gap": 0.1,
        "met": False,
    },
}


def test_render_makes_tables_with_machine_date_and_command():
    text = render({"unet_vs_peers": UNET, "samplers": SAMPLERS}, images="benchmarks/results")
    assert "| ours | 1x80x64 | 6.50M (+0.0%) | 1.500 | 200.0 |" in text and "fp32 train steps/s (batch 32)" in text
    assert "3.00x the fastest peer in training (peer)" in text and "not run: gone (dims 1): ImportError" in text
    assert "| ddim | 9.00 | 5.00 |" in text and "**missed**" in text
    assert "![Fréchet distance against steps](benchmarks/results/samplers.png)" in text
    assert (
        "Test CPU, 2 threads" in text
        and "2026-01-02T03:04:05+00:00" in text
        and "`python -m benchmarks.unet_vs_peers`" in text
    )


def test_load_results_skips_failed_benchmarks_and_prefers_their_own_files(tmp_path):
    (tmp_path / "all.json").write_text(
        json.dumps({"benchmarks": {"samplers": SAMPLERS, "end_to_end": {"error": "exit status 1"}}})
    )
    (tmp_path / "unet_vs_peers.json").write_text(json.dumps(UNET))
    assert sorted(load_results(tmp_path)) == ["samplers", "unet_vs_peers"]


def test_update_page_replaces_only_the_text_between_the_markers():
    page = f"# Title\n\nintro\n\n{START}\nold figures\n{END}\n\nafter\n"
    updated = update_page(page, "## Figures\nnew\n")
    assert updated == f"# Title\n\nintro\n\n{START}\n## Figures\nnew\n{END}\n\nafter\n"
    assert update_page(updated, "## Figures\nnew\n") == updated


def test_update_page_without_markers_says_what_to_add():
    with pytest.raises(ValueError, match="figures:start"):
        update_page("# no markers\n", "x")


def test_contents_link_every_section_by_its_github_anchor():
    text = render({"unet_vs_peers": UNET, "samplers": SAMPLERS})
    assert "- [U-Net against peers (same parameter count)](#u-net-against-peers-same-parameter-count)" in text
    assert "- [Sample quality against sampling steps](#sample-quality-against-sampling-steps)" in text
    assert text.index("](#sample-quality") < text.index("### U-Net against peers")


def test_links_are_relative_to_a_page_in_docs(tmp_path):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "samplers.json").write_text(json.dumps(SAMPLERS))
    text = section_for(tmp_path / "docs" / "results.md", results)
    assert "![Fréchet distance against steps](../benchmarks/results/samplers.png)" in text


def test_a_figure_named_by_its_repository_path_is_linked_from_the_page():
    own = {
        "figure": "docs/examples/x.png",
        "real": {"folder": "data/p", "decay_db_median": 30.0},
        "runs": [{"run": "a", "init_from": None, "steps": 1, "compute_seconds": 60.0, "decay_db_median": 3.0}],
    }
    assert "](examples/x.png)" in render({"own_data": own}, images="../benchmarks/results", page="docs/results.md")
    assert "](docs/examples/x.png)" in render({"own_data": own})


def test_notes_pitch_table():
    pitch = {
        "notes": 8,
        "targets": "90%",
        "model": {
            "source": "notes",
            "training_step": 5,
            "within_50_cents": 0.5,
            "unvoiced": 1,
            "median_abs_cents": 30.0,
            "family_accuracy": 0.25,
        },
        "real_floor": {"within_50_cents": 1.0, "unvoiced": 0, "median_abs_cents": 4.0, "family_accuracy": 1.0},
    }
    text = render({"notes_pitch": pitch})
    assert "| model | 0.500 | 1 | 30.0 | 0.250 |" in text and "| real notes | 1.000 | 0 | 4.0 | 1.000 |" in text


def test_own_data_and_threads_render_their_tables():
    own = {
        "benchmark": "own_data",
        "date": "2026-01-02",
        "command": "python -m benchmarks.own_data",
        "figure": "docs/examples/x.png",
        "real": {"folder": "data/p", "decay_db_median": 30.0},
        "runs": [
            {
                "run": "a",
                "init_from": "notes",
                "steps": 900,
                "compute_seconds": 600.0,
                "final_loss": 0.05,
                "decay_db_median": 25.5,
            },
            {
                "run": "b",
                "init_from": None,
                "steps": 950,
                "compute_seconds": 630.0,
                "final_loss": 0.2,
                "decay_db_median": 3.1,
            },
        ],
    }
    threads = {
        "benchmark": "threads",
        "date": "2026-01-02",
        "command": "python -m benchmarks.threads",
        "model": "small",
        "precision": "fp32",
        "rows": [{"busy_cores": b, "threads": t, "seconds_per_step": 0.1 * (t + b)} for b in (0, 1) for t in (1, 2)],
        "fastest_threads": {"0 busy": 2, "1 busy": 1},
        "auto_choice": {"0 busy": 2, "1 busy": 1},
    }
    text = render({"own_data": own, "threads": threads})
    assert "| from notes | 900 | 10.0 | 0.0500 | 25.5 |" in text and "| from scratch | 950 | 10.5 |" in text
    assert "| real clips (the training folder) |  |  |  | 30.0 |" in text and "![Spectrograms" in text
    assert "| 1 busy core(s) | 0.200 | 0.300 |" in text


def test_the_evaluation_and_vocoder_results_render():
    tradeoffs = {
        "date": "d",
        "num_clips": 40,
        "plot": "tradeoffs.png",
        "floor": {"frechet": 2.0, "accuracy": 1.0, "recall": 0.9},
        "rows": [
            {
                "case": "digits, dpmpp_2m",
                "steps": 16,
                "seconds_per_clip": 0.5,
                "frechet": 3.0,
                "accuracy": 0.99,
                "recall": 0.8,
            },
            {
                "case": "digits-fast (student)",
                "steps": 1,
                "seconds_per_clip": 0.05,
                "frechet": 4.0,
                "accuracy": 0.97,
                "recall": 0.7,
            },
        ],
    }
    likelihood = {
        "date": "d",
        "gaussian": [
            {
                "steps": 8,
                "probes": 1,
                "true_nll_nats": 8.3,
                "estimated_nll_nats": 8.1,
                "error": 0.2,
                "standard_error": 0.14,
            }
        ],
        "audio": {
            "checkpoint": "digits",
            "space": "normalised log-mel",
            "dims": 4960,
            "clips": 8,
            "steps": 6,
            "sets": {"real held-out clips": {"mean_bits_per_dim": -9.0, "standard_error": 0.5}},
        },
    }
    fidelity = {
        "date": "d",
        "targets": {},
        "results": {
            "held-out digits, +0 dB": {
                "clips": 4,
                "source": "s",
                "vocoder-16k": {"mel_l1_60db": 0.1, "mr_stft": 1.0, "frechet": {"over_floor": 1.4}},
                "griffin_lim": {"mel_l1_60db": 0.05, "mr_stft": 2.0},
            }
        },
        "verdicts": {"vocoder-16k": {"met": False, "checks": {"a": True, "b": False}}},
    }
    text = render({"tradeoffs": tradeoffs, "likelihood": likelihood, "vocoder_fidelity": fidelity})
    assert "| digits-fast (student) | 1 | 0.050 | 4.00 | 0.970 | 0.700 |" in text and "tradeoffs.md" in text
    assert "| 8 | 1 | 8.300 | 8.100 | +0.200 ± 0.140 |" in text and "| real held-out clips | -9.000 | 0.500 |" in text
    assert (
        "| held-out digits, +0 dB | vocoder-16k | 0.100 | 1.000 | – | 1.40 |" in text and "1 of 2 targets met" in text
    )


def test_latent_vs_mel_renders_the_cost_and_the_round_trip():
    row = {
        "case": "mel (baseline)",
        "input": [1, 80, 62],
        "sample_gflop_per_call": 4.39,
        "flops_fewer_x": 1.0,
        "train_s_per_step": 1.2,
        "train_faster_x": 1.0,
        "sample_ms_per_call": 90.0,
        "sample_faster_x": 1.0,
    }
    latent = {
        **row,
        "case": "latent 4x20x16, patch 2",
        "input": [4, 20, 16],
        "sample_gflop_per_call": 0.335,
        "flops_fewer_x": 13.1,
    }
    side = {"mel_l1_60db": 0.2, "mr_stft": 1.5, "frechet": {"vocoded": 20.0, "over_floor": 1.1}}
    result = {
        "date": "d",
        "unet": "digits-mel",
        "batch": {"train": 16, "sample": 2},
        "target": "4x",
        "unet_speed": [row, latent],
        "round_trip": {
            "clips": 40,
            "data": "data/notes",
            "autoencoder": "runs/ae",
            "vocoder only": side,
            "autoencoder + vocoder": {**side, "frechet": {"vocoded": 26.0, "over_floor": 1.43}},
            "frechet_vs_vocoder_only": 1.3,
            "met": False,
        },
    }
    text = render({"latent_vs_mel": result})
    assert "| latent 4x20x16, patch 2 | 4 x 20 x 16 | 0.335 | 13.1 |" in text
    assert "| autoencoder + vocoder | 0.200 | 1.500 | 26.00 | 1.43 |" in text and "at most 1.2x: missed" in text


UPSAMPLER = {
    "benchmark": "upsampler",
    "date": "2026-01-02",
    "command": "python benchmarks/upsampler.py --upsampler runs/up",
    "machine": {"cpu_model": "Test CPU", "threads": 1},
    "upsampler": "runs/up",
    "lsd": "log10 power",
    "results": {
        "drums (held-out kits)": {
            "plain": {"added 8-22 kHz": 2.0, "kept 0-7 kHz": 0.1, "whole": 1.5},
            "upsampler": {"added 8-22 kHz": 1.2, "kept 0-7 kHz": 0.1, "whole": 0.9},
            "clips": 4,
        }
    },
    "speed_batch1_10s": {"plain": {"seconds": 0.01, "x_real_time": 1000.0}, "upsampler": {"x_real_time": 80.0}},
    "targets": {
        "drums (held-out kits)": {"lsd_added_band_below_plain": 0.4, "met": True},
        "speed": {"x_real_time": 80.0, "met": False},
    },
}


def test_upsampler_section_appears_only_when_its_json_is_present(tmp_path):
    assert "Upsampler" not in section_for(tmp_path / "docs" / "results.md", tmp_path)
    (tmp_path / "upsampler.json").write_text(json.dumps(UPSAMPLER))
    text = section_for(tmp_path / "docs" / "results.md", tmp_path)
    assert "| held-out set | clips | method | LSD added 8-22 kHz | LSD kept 0-7 kHz | LSD whole |" in text
    assert "| drums (held-out kits) | 4 | plain resampling | 2.000 | 0.100 | 1.500 |" in text
    assert "|  |  | upsampler | 1.200 | 0.100 | 0.900 |" in text
    assert "LSD over the added band 40% below plain resampling's: met" in text
    assert "80x real time (plain resampling 1000.0x): **missed**" in text
    assert "_Test CPU, 1 threads; 2026-01-02; `python benchmarks/upsampler.py --upsampler runs/up`_" in text


def test_vocoder_real_counts_the_targets_each_vocoder_met():
    scores = {"mel_l1_60db": 0.1, "mr_stft": 1.0, "pesq_wb": 2.5, "stoi": 0.9, "real_time_factor": 50.0}
    result = {
        "per_set": 3,
        "results": {"held-out speakers": {"v": scores, "griffin_lim": {**scores, "pesq_wb": 2.0}}},
        "targets": {"v / held-out speakers": {"pesq_wb >= 3.3": {"met": False}, "stoi": {"met": True}}},
    }
    text = render({"vocoder_real": result})
    assert "| held-out speakers | v | 2.50 | 0.900 | 1.000 | 0.100 | – | 50.0 |" in text
    assert "|  | griffin_lim | 2.00 |" in text and "- v: 1 of 2 targets met (pesq_wb >= 3.3, stoi)" in text


def test_each_edit_strength_gets_its_own_section():
    def edit(strength: float, share: float) -> dict:
        row = {
            "target_family": share,
            "onset_within_20ms": 1.0,
            "median_onset_shift_ms": 0.0,
            "f0_within_50_cents": 0.5,
        }
        return {"strength": strength, "clips": 4, "results": {"inversion": row, "noise": row}}

    text = render({"edit": edit(0.7, 0.25), "edit_strength_1": edit(1.0, 0.75)})
    assert "### Editing by inversion against noising, strength 0.7" in text
    assert "### Editing by inversion against noising, strength 1.0" in text
    assert "| inversion (`edit`) | 0.250 | 1.000 | 0.0 | 0.500 |" in text and "| noising (`vary`) | 0.750 |" in text


def test_inversion_and_drums_render_their_tables():
    inversion = {
        "clips": 2,
        "model": "notes",
        "results": {
            "32": {
                "log_mel_l1_60db": {"refined": 0.1, "plain": 0.2, "vary_1": 0.9},
                "model_space_snr_db": {"refined": 20.0, "plain": 15.0},
                "refined_over_vary_1": 0.111,
            }
        },
    }
    drums = {
        "model": "runs/drums",
        "training_step": 10,
        "settings": {"sampler": "ddim", "steps": 8, "guidance": 2.0},
        "results": {
            "clips": 5,
            "correlation": {"decay": 0.5, "brightness": 0.25, "velocity_vs_peak_db": None},
            "accuracy_generated": 0.2,
            "accuracy_real_held_out": 0.8,
        },
    }
    text = render({"inversion": inversion, "drums": drums})
    assert "| 32 | 0.100 | 0.200 | 0.900 | 0.111 | 20.0 | 15.0 |" in text
    assert "| 5 | 0.200 | 0.800 | 0.500 | 0.250 | – |" in text and "ddim 8 steps, guidance 2" in text


def test_adapter_vs_finetune_names_the_cpu_from_its_machine_field():
    run = {"steps": 10, "frechet": 3.0, "floor": 1.0, "precision": 0.9, "recall": 0.8, "coverage": 0.7}
    result = {
        "date": "2026-01-02",
        "command": "scripts/adapter-vs-finetune",
        "machine": {"cpu": "Test CPU", "threads": 1},
        "finetune": {**run, "peak_memory_mb": 100, "export_mb": 25.0},
        "lora_rank8": {**run, "peak_memory_mb": 120, "export_mb": 1.5},
        "adapter_parameters": 1000,
        "base_parameters": 20000,
        "adapter_share": 0.05,
    }
    text = render({"adapter_vs_finetune": result})
    assert "| full fine-tuning | 10 | 3.00 (1.00) | 0.900 | 0.800 | 0.700 | 100 | 25.00 |" in text
    assert "| LoRA adapter, rank 8 | 10 |" in text and "1,000 parameters, 5.0% of the base's 20,000" in text
    assert "_Test CPU, 1 threads; 2026-01-02; `scripts/adapter-vs-finetune`_" in text
