"""The "Figures" section of `docs/results.md`, generated from the benchmark JSON in
`benchmarks/results/`: a table of contents, then one subsection per benchmark with its table, its
plot, the machine, the date and the command. Only the text between the `<!-- figures:start -->`
and `<!-- figures:end -->` markers changes.

    python -m benchmarks.figures [--results benchmarks/results] [--out docs/results.md] [--print]
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import sys
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python benchmarks/figures.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import RESULTS

START, END = "<!-- figures:start -->", "<!-- figures:end -->"
ROOT = Path(__file__).resolve().parents[1]


def _number(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _provenance(result: dict) -> str:
    machine = result.get("machine") or {}
    threads = machine.get("threads")
    bf16 = machine.get("native_bf16")
    parts = [
        machine.get("cpu_model") or machine.get("cpu") or "unknown CPU",
        f"{threads} threads" if threads else None,
        f"torch {machine['torch']}" if machine.get("torch") else None,
        None if bf16 is None else ("native bf16" if bf16 else "no native bf16"),
    ]
    load = machine.get("load_average") or machine.get("load_average_before")
    if load:
        parts.append(f"load average {load[0]:.1f}")
    run = f"`{result['command']}`" if result.get("command") else "command not recorded"
    return f"_{', '.join(p for p in parts if p)}; {result.get('date', 'date unknown')}; {run}_"


def _model(result: dict) -> str:
    """The model a result was measured on, flagged when it was still in training."""
    step, planned = result.get("training_step"), result.get("training_steps_planned")
    text = f"{result.get('checkpoint')} (training step {step}"
    if step is not None and planned and step < planned:
        text += f" of {planned}: a model still in training, numbers for wiring only"
    return text + ")"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def render_unet_vs_peers(result: dict, images: str) -> list[str]:
    lines = ["### U-Net against peers (same parameter count)", ""]
    rows = result.get("results", [])
    precisions = list(dict.fromkeys(row["precision"] for row in rows))
    header = ["model", "input", "params (vs ours)"]
    for precision in precisions:
        batch = next(row["input"][0] for row in rows if row["precision"] == precision)
        header += [f"{precision} train steps/s (batch {batch})", f"{precision} sample ms/step"]
    body = []
    for key in dict.fromkeys((row["name"], row["dims"]) for row in rows):
        group = {row["precision"]: row for row in rows if (row["name"], row["dims"]) == key}
        first = next(iter(group.values()))
        ratio = first.get("parameters_vs_ours")
        cells = [
            first["name"] + (" (diagnostic)" if first.get("diagnostic") else ""),
            "x".join(map(str, first["input"][1:])),
            f"{first['parameters'] / 1e6:.2f}M ({'–' if ratio is None else f'{ratio:+.1%}'})",
        ]
        for precision in precisions:
            row = group.get(precision)
            cells += [_number(row and row["train_steps_per_s"], 3), _number(row and row["sample_ms_per_step"], 1)]
        body.append(cells)
    lines += _table(header, body) + [""]
    for line in sorted(result.get("summary", []), key=lambda line: (-line["dims"], line["precision"] != "fp32")):
        lines.append(
            f"- {'mel' if line['dims'] == 2 else 'waveform'} {line['precision']}: ours is {line['train_speedup']:.2f}x the "
            f"fastest peer in training ({line['fastest_peer_train']}) and {line['sample_speedup']:.2f}x in sampling "
            f"({line['fastest_peer_sample']}); target {line['target']}x: {'met' if line['target_met'] else '**missed**'}"
        )
    for row in result.get("not_run", []):
        lines.append(f"- not run: {row['name']} (dims {row['dims']}): {row['error']}")
    lines += [f"- note: {note}" for note in result.get("notes", [])]
    return lines


def render_samplers(result: dict, images: str) -> list[str]:
    lines = ["### Sample quality against sampling steps", ""]
    curve = [row for row in result.get("rows", []) if row.get("curve")]
    steps = sorted({row["steps"] for row in curve})
    body = []
    for sampler in dict.fromkeys(row["sampler"] for row in curve):
        values = {row["steps"]: row["frechet"] for row in curve if row["sampler"] == sampler}
        body.append([sampler] + [_number(values.get(step)) for step in steps])
    lines += _table(["sampler"] + [f"{step} steps" for step in steps], body) + [""]
    lines.append(
        f"Fréchet distance in the evaluation classifier's features against {result.get('num_reference_clips')} real "
        f"test clips, {result.get('num_clips')} generated clips, guidance {result.get('guidance')}, vocoder "
        f"{result.get('vocoder')}; model {_model(result)}. "
        f"Floor (real train clips, as many): {_number((result.get('floor') or {}).get('frechet'))}."
    )
    target = result.get("target")
    if target:
        lines += [
            "",
            f"- target: {target['sampler']} at {target['few_steps']} steps within {target['allowed_gap']:.0%} of "
            f"{target['many_steps']} steps: {_number(target['few_frechet'])} vs {_number(target['many_frechet'])} "
            f"({target['relative_gap']:+.1%}): {'met' if target['met'] else '**missed**'}",
        ]
    if result.get("plot"):
        lines += ["", f"![Fréchet distance against steps]({images}/{result['plot']})"]
    return lines


def render_end_to_end(result: dict, images: str) -> list[str]:
    lines = ["### End-to-end generation speed (1 s of audio)", ""]
    body = [
        [
            row["vocoder"],
            str(row["batch"]),
            _number(row["median_s"]),
            _number(row["diffusion_s"]),
            _number(row["vocoder_s"]),
            _number(row["x_real_time"]),
        ]
        for row in result.get("rows", [])
    ]
    lines += _table(["vocoder", "batch", "total s", "diffusion s", "vocoder s", "x real time"], body) + [""]
    settings = result.get("settings", {})
    model = f"{Path(str(result.get('checkpoint'))).name} (training step {result.get('training_step')}; speed does not depend on it)"
    lines.append(
        f"Model {model}: {settings.get('sampler')}, {settings.get('steps')} steps, guidance "
        f"{settings.get('guidance')}, {result.get('machine', {}).get('threads')} threads."
    )
    if result.get("default_vocoder_is_griffin_lim"):
        lines.append("Its default vocoder is Griffin-Lim, so the rows above are also the Griffin-Lim baseline.")
    target = result.get("target")
    if target:
        lines += [
            "",
            f"- target: {target['wanted']:g}x real time at batch {target['batch']}: {target['x_real_time']:.2f}x, "
            f"{'met' if target['met'] else '**missed**'}",
        ]
    return lines


def render_distill(result: dict, images: str) -> list[str]:
    lines = ["### Few-step students against their teacher at equal network calls", ""]
    reference = result["reference_row"]
    body = [
        [
            row["model"],
            f"{row['sampler']} {row['steps']}",
            f"{row['guidance']:g}",
            str(row["calls_per_clip"]),
            _number(row["frechet"]),
            _number(row["accuracy"], 3),
            _number(row["seconds_per_clip"], 3),
        ]
        for row in [reference, *result.get("rows", [])]
    ]
    lines += _table(
        ["model", "sampler, steps", "guidance", "calls per clip", "Fréchet", "accuracy", "s per clip"], body
    ) + [""]
    lines.append(
        f"{result.get('num_clips')} clips (10 digits), Fréchet distance in the evaluation classifier's features "
        f"against the real test split; floor (real train clips, as many): {_number(result.get('floor'))}. "
        "Teacher rows are the best of dpmpp_2m, ddim, euler and heun, guided or not, at that budget."
    )
    for target in result.get("targets", []):
        if "frechet_ratio" in target:
            lines.append(
                f"- target: {target['what']}: {target['model']} {target['frechet_ratio']:.2f}x the Fréchet distance "
                f"(allowed {target['allowed_ratio']:g}x), accuracy {-target['accuracy_gap']:+.3f}: "
                f"{'met' if target['met'] else '**missed**'}"
            )
        else:
            lines.append(
                f"- target: {target['what']}: {target['distill_hours']:.2f} h vs {target['teacher_hours']:.2f} h "
                f"({target['ratio']:.0%}, allowed {target['allowed_ratio']:.0%}): {'met' if target['met'] else '**missed**'}"
            )
    if result.get("plot"):
        lines += ["", f"![Fréchet distance against network calls]({images}/{result['plot']})"]
    return lines


def render_vocoder_speed(result: dict, images: str) -> list[str]:
    lines = ["### Vocoder speed (x real time, higher is faster)", ""]
    rows = result.get("rows", [])
    cases = list(dict.fromkeys((row["batch"], row["seconds"]) for row in rows))
    parameters = result.get("parameters", {})
    body = []
    for name in dict.fromkeys(row["vocoder"] for row in rows):
        cells = [name, parameters.get(name, "–")]
        for batch, seconds in cases:
            row = next((r for r in rows if (r["vocoder"], r["batch"], r["seconds"]) == (name, batch, seconds)), None)
            cells.append(_number(row and row["x_real_time"], 1))
        body.append(cells)
    return lines + _table(["vocoder", "params"] + [f"batch {b} x {s:g} s" for b, s in cases], body)


def render_unet_speed(result: dict, images: str) -> list[str]:
    lines = ["### U-Net speed by size and precision", ""]
    body = [
        [
            str(row["dims"]),
            row["size"],
            row["precision"],
            f"{row['parameters'] / 1e6:.2f}M",
            _number(row["train_steps_per_s"], 3),
            _number(row["sample_ms_per_step"], 1),
        ]
        for row in result.get("results", [])
    ]
    return lines + _table(["dims", "size", "precision", "params", "train steps/s", "sample ms/step"], body)


def render_generate_speed(result: dict, images: str) -> list[str]:
    lines = [f"### Generate speed: a `{result.get('model')}` generate call against a matrix product", ""]
    peak = result.get("matmul_gflop_per_s", {})
    body = [
        [
            str(row["batch"]),
            row["precision"],
            "yes" if row["channels_last"] else "no",
            "yes" if row["compile"] else "no",
            _number(row["seconds"], 3),
            _number(row["gflop_per_s"], 1),
            f"{row['of_matmul']:.0%}",
            f"{row['of_fp32_matmul']:.0%}",
            _number(row.get("first_call_seconds"), 1),
        ]
        for row in result.get("results", [])
    ]
    lines += _table(
        [
            "batch",
            "precision",
            "channels-last",
            "compiled",
            "s / call",
            "GFLOP/s",
            "of matmul (same precision)",
            "of fp32 matmul",
            "first call s",
        ],
        body,
    )
    lines += [
        "",
        f"{result.get('steps')} sampler steps with guidance; 2048 x 2048 matmul: "
        + ", ".join(f"{name} {value:g} GFLOP/s" for name, value in peak.items())
        + f". Targets: {', '.join(f'{share:.0%} of the matmul at batch {batch}' for batch, share in result.get('targets', {}).items())}.",
    ]
    defaults = result.get("defaults", {})
    fastest = result.get("fastest", {})
    lines += [
        "",
        f"Pipeline defaults: precision {defaults.get('precision')}, channels_last {defaults.get('channels_last')}, "
        f"compile {defaults.get('compile')}. Fastest: "
        + "; ".join(
            f"batch {batch}: {row['precision']}, channels_last {row['channels_last']}, compile {row['compile']} "
            f"({row['seconds']:.3f} s)"
            for batch, row in fastest.items()
        )
        + ".",
    ]
    return lines


def render_vocoder_fidelity(result: dict, images: str) -> list[str]:
    lines = ["### Vocoder fidelity: real clips through mel and back, beside Griffin-Lim (32 iterations)", ""]
    rows = result.get("results", {})
    names = list(dict.fromkeys(name for row in rows.values() for name, value in row.items() if isinstance(value, dict)))
    body = []
    for key, row in rows.items():
        for name in names:
            scores = row.get(name) or {}
            fd = scores.get("frechet") or {}
            body.append(
                [
                    key if name == names[0] else "",
                    name,
                    _number(scores.get("mel_l1_60db"), 3),
                    _number(scores.get("mr_stft"), 3),
                    _number(scores.get("f0_within_20_cents"), 3),
                    _number(fd.get("over_floor"), 2),
                ]
            )
    lines += _table(
        [
            "set, input level",
            "vocoder",
            "log-mel L1 (60 dB floor)",
            "multi-res STFT",
            "F0 within 20 cents",
            "Fréchet / real floor",
        ],
        body,
    )
    if result.get("note"):
        lines += ["", result["note"]]
    verdicts = result.get("verdicts") or {}
    for name, verdict in verdicts.items():
        met = sum(verdict["checks"].values())
        lines += ["", f"{name}: {met} of {len(verdict['checks'])} targets met ({result.get('targets')})."]
    return lines


def render_likelihood(result: dict, images: str) -> list[str]:
    lines = ["### Likelihood from the probability-flow ODE: the exact Gaussian case, then audio", ""]
    body = [
        [
            str(row["steps"]),
            str(row.get("probes", 1)),
            _number(row["true_nll_nats"], 3),
            _number(row["estimated_nll_nats"], 3),
            f"{row['error']:+.3f} ± {row['standard_error']:.3f}",
        ]
        for row in result.get("gaussian", [])
    ]
    lines += _table(["RK4 steps", "probes", "exact NLL (nats)", "estimate", "error ± SE"], body)
    audio = result.get("audio")
    if audio:
        lines += [
            "",
            f"{audio['checkpoint']}: NLL in bits/dim of its {audio['space']} ({audio['dims']} dimensions), "
            f"{audio['clips']} held-out clips, {audio['steps']} steps:",
            "",
        ]
        lines += _table(
            ["clips", "NLL (bits/dim)", "standard error"],
            [
                [name, _number(row["mean_bits_per_dim"], 3), _number(row["standard_error"], 3)]
                for name, row in audio["sets"].items()
            ],
        )
    return lines


def render_tradeoffs(result: dict, images: str) -> list[str]:
    lines = [
        "### Speed and quality: samplers, steps, students, vocoders",
        "",
        f"Headline rows of [the full report]({images}/tradeoffs.md) ({result.get('num_clips')} clips per case):",
        "",
    ]
    rows = result.get("rows", [])
    chosen = [
        row
        for row in rows
        if "student" in row["case"]
        or "Griffin" in row["case"]
        or (row["steps"] in (1, 4, 16, 64) and "dpmpp_2m" in row["case"])
    ]
    floor = result.get("floor") or {}
    body = [
        [
            "real train clips (floor)",
            "–",
            "–",
            _number(floor.get("frechet")),
            _number(floor.get("accuracy"), 3),
            _number(floor.get("recall"), 3),
        ]
    ]
    body += [
        [
            row["case"],
            str(row["steps"]),
            _number(row["seconds_per_clip"], 3),
            _number(row["frechet"]),
            _number(row["accuracy"], 3),
            _number(row["recall"], 3),
        ]
        for row in chosen
    ]
    lines += _table(["case", "steps", "seconds/clip", "Fréchet", "accuracy", "recall"], body)
    return lines + ["", f"![trade-off]({images}/{result['plot']})"] if result.get("plot") else lines


def render_notes_pitch(result: dict, images: str) -> list[str]:
    lines = ["### Notes: asked pitch and instrument", ""]
    body = [
        [
            side,
            _number(row.get("within_50_cents"), 3),
            str(row.get("unvoiced")),
            _number(row.get("median_abs_cents"), 1),
            _number(row.get("family_accuracy"), 3),
        ]
        for side, row in (("model", result["model"]), ("real notes", result["real_floor"]))
    ]
    lines += _table(["", "F0 within 50 cents", "no F0 found", "median |cents|", "family recognised"], body)
    sampling = result.get("sampling")
    heard = f", {sampling['steps']} steps, {_guidance(sampling)}, vocoder {sampling['vocoder']}" if sampling else ""
    return lines + [
        "",
        f"{result.get('notes')} held-out notes, model {result['model'].get('source')} (training step "
        f"{result['model'].get('training_step')}{heard}); targets: {result.get('targets')}.",
    ]


def _guidance(sampling: dict) -> str:
    """'guidance 2', or with guide= and an interval: 'guidance 3 for label at noise levels 0.5-1, 2.5 otherwise'."""
    guided = sampling.get("guided_conditions", sampling.get("guide"))
    text = f"guidance {sampling['guidance']:g}"
    if guided and guided != "all":
        text += f" for {', '.join(guided)}"
    low, high = sampling.get("guidance_interval") or (0.0, 1.0)
    if (low, high) != (0.0, 1.0):
        text += f" at noise levels {low:g}-{high:g}"
    if guided and guided != "all":
        text += f", {sampling.get('rest_guidance', 1.0):g} otherwise"
    return text


def render_guidance_sweep(result: dict, images: str) -> list[str]:
    lines = ["### Notes: guidance that favours the instrument, swept", ""]
    body = []
    for row in result["rows"]:
        pitch = row.get("pitch_200") or {}
        shapes = row["named_shapes_by_kind"]
        body.append(
            [
                row["setting"],
                _number(pitch.get("within_50_cents"), 3),
                _number(pitch.get("family_accuracy"), 3),
                _number(row["held_out_gestures"]["frames_within_50_cents"], 3),
                _number(row["named_shapes_frames_within_50_cents"], 3),
                _number(shapes["steps"], 3),
                _number(shapes["vibrato"], 3),
                _number(row["vibrato_f0_r"], 2),
            ]
        )
    lines += _table(
        [
            "guidance",
            "pitch within 50 c",
            "family",
            "held-out contours",
            "named shapes",
            "steps shape",
            "vibrato shape",
            "vibrato F0 r",
        ],
        body,
    )
    lines += [
        "",
        f"{result['model']}. Pitch and family: 200 held-out notes asked by `pitch=`; contours: frames within 50 "
        f"cents (48 clips each). Targets: {result['targets']}.",
        "",
    ]
    evals = [
        [name, _number(row["frechet"], 1), _number(row["recall"], 3), _number(row["accuracy"], 3)]
        for name, row in result["eval_label_only_78_clips"].items()
        if isinstance(row, dict)
    ]
    lines += [
        "Family asked alone (`audiodiff eval`, 78 clips; Fréchet floor "
        f"{result['eval_label_only_78_clips']['floor']}):",
        "",
    ]
    return lines + _table(["guidance", "Fréchet distance", "recall", "classifier accuracy"], evals)


def render_own_data(result: dict, images: str) -> list[str]:
    lines = ["### Your own audio: fine-tuned from a bundled model against from scratch, same budget", ""]
    body = [
        [
            f"from {row['init_from']}" if row.get("init_from") else "from scratch",
            str(row["steps"]),
            f"{row['compute_seconds'] / 60:.1f}",
            _number(row.get("final_loss"), 4),
            f"{row['decay_db_median']:.1f}",
        ]
        for row in result["runs"]
    ]
    body.append(["real clips (the training folder)", "", "", "", f"{result['real']['decay_db_median']:.1f}"])
    lines += _table(
        ["start", "steps", "training minutes (step compute)", "last logged loss", "decay, dB (median)"], body
    ) + [""]
    lines.append(
        f"Folder: `{result['real']['folder']}`. Decay: the envelope's drop from its loudest 23 ms frame to the "
        "clip's last quarter (one-shots drop by tens of dB, stationary noise by a few). Samples share seeds."
    )
    lines += ["", f"![Spectrograms: fine-tuned, from scratch, real]({result['figure']})"]
    return lines


def render_threads(result: dict, images: str) -> list[str]:
    lines = ["### Training speed against threads, quiet and beside a busy core", ""]
    threads = sorted({row["threads"] for row in result["rows"]})
    body = [
        [
            f"{busy} busy core(s)",
            *[
                _number(
                    next(
                        r["seconds_per_step"] for r in result["rows"] if r["busy_cores"] == busy and r["threads"] == t
                    ),
                    3,
                )
                for t in threads
            ],
        ]
        for busy in sorted({row["busy_cores"] for row in result["rows"]})
    ]
    lines += _table(["machine", *[f"{t} thread(s), s/step" for t in threads]], body) + [""]

    def threads_by_load(choice: dict) -> str:
        return ", ".join(f"{count} with {busy}" for busy, count in choice.items())

    lines.append(
        f"{result['model']}, {result['precision']}. Fastest: {threads_by_load(result['fastest_threads'])}; "
        f"`train.threads=0` picks {threads_by_load(result['auto_choice'])}."
    )
    return lines


def render_latent_vs_mel(result: dict, images: str) -> list[str]:
    lines = ["### Latent against mel: U-Net cost at matched width, and the autoencoder's round trip", ""]
    rows = result.get("unet_speed") or []
    if rows:
        body = [
            [
                row["case"],
                " x ".join(map(str, row["input"])),
                _number(row["sample_gflop_per_call"], 3),
                _number(row["flops_fewer_x"], 1),
                _number(row["train_s_per_step"], 3),
                _number(row["train_faster_x"], 1),
                _number(row["sample_ms_per_call"], 1),
                _number(row["sample_faster_x"], 1),
            ]
            for row in rows
        ]
        lines += _table(
            ["U-Net input", "shape", "GFLOP/call", "fewer FLOPs", "s/train step", "faster", "ms/call", "faster"], body
        ) + [""]
        lines.append(
            f"{result.get('unet')}; training batch {result['batch']['train']}, sampling batch {result['batch']['sample']}. "
            f"Target: {result.get('target')}."
        )
    trip = result.get("round_trip")
    if trip:
        sides = ("vocoder only", "autoencoder + vocoder")
        body = [
            [
                side,
                _number(trip[side].get("mel_l1_60db"), 3),
                _number(trip[side].get("mr_stft"), 3),
                _number((trip[side].get("frechet") or {}).get("vocoded"), 2),
                _number((trip[side].get("frechet") or {}).get("over_floor"), 2),
            ]
            for side in sides
        ]
        lines += [
            "",
            *_table(
                ["real held-out clips through", "log-mel L1 (60 dB floor)", "MR-STFT", "Fréchet", "x real floor"], body
            ),
            "",
        ]
        verdict = "met" if trip.get("met") else "missed"
        lines.append(
            f"{trip['clips']} clips of `{trip['data']}`, autoencoder `{trip['autoencoder']}`; autoencoder + vocoder at "
            f"{trip.get('frechet_vs_vocoder_only')}x the vocoder-only Fréchet distance (target at most 1.2x: {verdict})."
        )
    equal = result.get("equal_time")
    if equal and equal.get("models"):
        names = {
            "latent": "digits-latent, from scratch",
            "mel": "digits-mel, from scratch",
            "bundled": "bundled digits (mel)",
        }
        body = [
            [
                names.get(name, name),
                _number(row.get("training_steps"), 0),
                _number(row.get("training_minutes"), 1),
                _number(row.get("frechet_classifier"), 2),
                _number(row.get("accuracy"), 3),
                _number(row.get("recall_classifier"), 3),
            ]
            for name, row in equal["models"].items()
        ]
        floor = next(iter(equal["models"].values())).get("frechet_classifier_floor")
        lines += ["", *_table(["digits model", "steps", "training minutes", "Fréchet", "accuracy", "recall"], body), ""]
        lines.append(
            f"Trained one at a time for the same budget of training-loop minutes and scored by one classifier on the same "
            f"held-out clips (real floor {_number(floor, 2)}); `scripts/digits-equal-time`."
        )
        if "machine" in equal:
            lines += ["", f"This table: {_provenance(equal)}"]
    return lines


def render_vocoder_real(result: dict, images: str) -> list[str]:
    lines = ["### Vocoders on real recordings: held-out speakers, kits and tracks", ""]
    body = []
    for set_name, row in result.get("results", {}).items():
        for index, (name, scores) in enumerate(row.items()):
            body.append(
                [
                    set_name if index == 0 else "",
                    name,
                    _number(scores.get("pesq_wb")),
                    _number(scores.get("stoi"), 3),
                    _number(scores.get("mr_stft"), 3),
                    _number(scores.get("mel_l1_60db"), 3),
                    _number(scores.get("f0_within_20_cents"), 3),
                    _number(scores.get("real_time_factor"), 1),
                ]
            )
    lines += _table(
        [
            "set",
            "vocoder",
            "PESQ (wideband)",
            "STOI",
            "multi-res STFT",
            "log-mel L1 (60 dB floor)",
            "F0 within 20 cents",
            "x real time",
        ],
        body,
    )
    lines += [
        "",
        f"{result.get('per_set')} clips per set through each vocoder's mel and back, beside our Griffin-Lim and "
        "librosa's (32 iterations); PESQ and STOI on speech only.",
    ]
    checks: dict[str, list[bool]] = {}  # vocoder -> met, over its "vocoder / set" entries
    for key, targets in result.get("targets", {}).items():
        checks.setdefault(key.split(" / ")[0], []).extend(target["met"] for target in targets.values())
    if checks:
        names = ", ".join(dict.fromkeys(name for targets in result["targets"].values() for name in targets))
        lines += [
            "",
            *(f"- {vocoder}: {sum(met)} of {len(met)} targets met ({names})" for vocoder, met in checks.items()),
        ]
    return lines


def render_upsampler(result: dict, images: str) -> list[str]:
    lines = ["### Upsampler 16 to 44.1 kHz against plain resampling", ""]
    rows = result.get("results", {})
    bands = list(dict.fromkeys(band for row in rows.values() for band in row.get("plain", {})))
    body = [
        [
            set_name if method == "plain" else "",
            str(row.get("clips")) if method == "plain" else "",
            "plain resampling" if method == "plain" else "upsampler",
            *[_number(row[method].get(band), 3) for band in bands],
        ]
        for set_name, row in rows.items()
        for method in ("plain", "upsampler")
    ]
    lines += _table(["held-out set", "clips", "method", *[f"LSD {band}" for band in bands]], body)
    lines += [
        "",
        f"Log-spectral distance to the 44.1 kHz clip after a trip through 16 kHz, lower is better ({result.get('lsd')}); "
        f"upsampler `{result.get('upsampler')}`.",
    ]
    plain_speed = ((result.get("speed_batch1_10s") or {}).get("plain") or {}).get("x_real_time")
    verdicts = []
    for name, target in result.get("targets", {}).items():
        verdict = "met" if target["met"] else "**missed**"
        if name == "speed":
            verdicts.append(
                f"- speed, batch 1 x 10 s: {target['x_real_time']:g}x real time (plain resampling "
                f"{_number(plain_speed, 1)}x): {verdict}"
            )
        else:
            below = target["lsd_added_band_below_plain"]
            verdicts.append(f"- {name}: LSD over the added band {below:.0%} below plain resampling's: {verdict}")
    if verdicts:
        lines += ["", *verdicts]
    if result.get("figure"):
        lines += ["", f"![Spectrograms: plain, upsampled, real]({result['figure']})"]
    return lines


def render_inversion(result: dict, images: str) -> list[str]:
    lines = ["### Inversion round trip: a clip to noise and back", ""]
    body = [
        [
            steps,
            _number(row["log_mel_l1_60db"].get("refined"), 3),
            _number(row["log_mel_l1_60db"].get("plain"), 3),
            _number(row["log_mel_l1_60db"].get("vary_1"), 3),
            _number(row.get("refined_over_vary_1"), 3),
            _number(row["model_space_snr_db"].get("refined"), 1),
            _number(row["model_space_snr_db"].get("plain"), 1),
        ]
        for steps, row in result.get("results", {}).items()
    ]
    lines += _table(
        [
            "steps",
            "log-mel L1, refined",
            "plain DDIM",
            "vary(1.0)",
            "refined / vary",
            "model-space SNR dB, refined",
            "plain DDIM",
        ],
        body,
    )
    return lines + [
        "",
        f"{result.get('clips')} held-out clips, model {result.get('model')}, guidance {result.get('guidance')}: each "
        "inverted to noise (DDIM with fixed-point refinement, or plain) and regenerated; vary(1.0) keeps nothing "
        f"of the clip. Log-mel L1 with a 60 dB floor, lower is better. Target: {result.get('target')}.",
    ]


def render_edit(result: dict, images: str) -> list[str]:
    lines = [f"### Editing by inversion against noising, strength {result.get('strength')}", ""]
    names = {"inversion": "inversion (`edit`)", "noise": "noising (`vary`)"}
    body = [
        [
            names.get(method, method),
            _number(row.get("target_family"), 3),
            _number(row.get("onset_within_20ms"), 3),
            _number(row.get("median_onset_shift_ms"), 1),
            _number(row.get("f0_within_50_cents"), 3),
        ]
        for method, row in result.get("results", {}).items()
    ]
    lines += _table(
        ["method", "heard as the target family", "onset within 20 ms", "median onset shift ms", "F0 within 50 cents"],
        body,
    )
    return lines + [
        "",
        f"{result.get('clips')} held-out notes of model {result.get('model')} asked to become another family, "
        f"{result.get('steps')} steps, guidance {result.get('guidance')}; targets: {result.get('targets')}.",
    ]


def render_adapter_vs_finetune(result: dict, images: str) -> list[str]:
    lines = ["### Your own audio: a LoRA adapter against full fine-tuning, same budget", ""]
    names = {"finetune": "full fine-tuning", "lora_rank8": "LoRA adapter, rank 8"}
    runs = {name: row for name, row in result.items() if isinstance(row, dict) and "frechet" in row}
    body = [
        [
            names.get(name, name),
            str(row.get("steps")),
            f"{_number(row.get('frechet'))} ({_number(row.get('floor'))})",
            _number(row.get("precision"), 3),
            _number(row.get("recall"), 3),
            _number(row.get("coverage"), 3),
            str(row.get("peak_memory_mb")),
            _number(row.get("export_mb")),
        ]
        for name, row in runs.items()
    ]
    lines += _table(
        ["run", "steps", "Fréchet (real floor)", "precision", "recall", "coverage", "peak memory MB", "export MB"], body
    )
    load = result.get("load_seconds") or {}
    return lines + [
        "",
        f"From `{result.get('base')}`, {result.get('budget_minutes')} training minutes each, on {result.get('data')}. "
        f"The adapter: {result.get('adapter_parameters', 0):,} parameters, {result.get('adapter_share', 0):.1%} of "
        f"the base's {result.get('base_parameters', 0):,}; loading takes {_number(load.get('base'))} s for the base, "
        f"{_number(load.get('base_with_adapter'))} s with the adapter.",
    ]


def render_drums(result: dict, images: str) -> list[str]:
    lines = ["### Drums: what the model is asked against what it makes", ""]
    row = result.get("results", {})
    correlation = row.get("correlation") or {}
    lines += _table(
        [
            "clips",
            "class as asked",
            "real clips' class (classifier floor)",
            "r decay",
            "r brightness",
            "r velocity, peak dB",
        ],
        [
            [
                str(row.get("clips")),
                _number(row.get("accuracy_generated"), 3),
                _number(row.get("accuracy_real_held_out"), 3),
                _number(correlation.get("decay"), 3),
                _number(correlation.get("brightness"), 3),
                _number(correlation.get("velocity_vs_peak_db"), 3),
            ]
        ],
    )
    settings = result.get("settings") or {}
    heard = (
        f", {settings['sampler']} {settings['steps']} steps, {_guidance(settings)}" if "guidance" in settings else ""
    )
    lines += [
        "",
        f"Model {result.get('model')} (training step {result.get('training_step')}{heard}), asked for each held-out "
        "clip's class, velocity, decay and brightness; each hit measured by the data builder's descriptors; r: "
        "Pearson correlation of asked against measured (–: not measurable, a measure that did not vary).",
    ]
    if result.get("figure"):
        lines += ["", f"![Drums: generated beside real, per class]({result['figure']})"]
    return lines


def _retitled(renderer: Callable[[dict, str], list[str]], title: str) -> Callable[[dict, str], list[str]]:
    """`renderer` under another heading (the same table for a student's or another run's result)."""
    return lambda result, images: [title, *renderer(result, images)[1:]]


RENDERERS: dict[str, Callable[[dict, str], list[str]]] = {
    "unet_vs_peers": render_unet_vs_peers,
    "samplers": render_samplers,
    "distill": render_distill,
    "distill_consistency": _retitled(
        render_distill, "### Consistency distillation beside the bundled one-step student (same run)"
    ),
    "end_to_end": render_end_to_end,
    "end_to_end_fast": _retitled(
        render_end_to_end, "### End-to-end generation speed of the few-step student (1 s of audio)"
    ),
    "vocoder_speed": render_vocoder_speed,
    "unet_speed": render_unet_speed,
    "generate_speed": render_generate_speed,
    "vocoder_fidelity": render_vocoder_fidelity,
    "vocoder_fidelity_universal": _retitled(
        render_vocoder_fidelity, "### Vocoder fidelity: the universal vocoder beside vocoder-16k and Griffin-Lim"
    ),
    "vocoder_real": render_vocoder_real,
    "upsampler": render_upsampler,
    "tradeoffs": render_tradeoffs,
    "likelihood": render_likelihood,
    "notes_pitch": render_notes_pitch,
    "notes_pitch_fast": _retitled(
        render_notes_pitch, "### Notes: asked pitch and instrument, one-step student (notes-fast)"
    ),
    "guidance_sweep": render_guidance_sweep,
    "inversion": render_inversion,
    "edit": render_edit,
    "edit_strength_1": render_edit,
    "drums": render_drums,
    "own_data": render_own_data,
    "adapter_vs_finetune": render_adapter_vs_finetune,
    "latent_vs_mel": render_latent_vs_mel,
    "threads": render_threads,
}
"""Benchmark name (its JSON file's stem) -> markdown lines; docs/results.md shows them in this order."""


def load_results(folder: str | Path) -> dict[str, dict]:
    """The newest result of each known benchmark: its own JSON file, else its entry in all.json."""
    folder = Path(folder)
    combined = {}
    if (folder / "all.json").is_file():
        combined = json.loads((folder / "all.json").read_text()).get("benchmarks", {})
    results = {}
    for name in RENDERERS:
        path = folder / f"{name}.json"
        result = json.loads(path.read_text()) if path.is_file() else combined.get(name)
        if result and "error" not in result:
            results[name] = result
    return results


def _anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower()).replace(" ", "-")


def _contents(lines: list[str]) -> list[str]:
    """A bullet list linking each `###` heading of `lines`."""
    seen: dict[str, int] = {}
    items = []
    for line in lines:
        if line.startswith("### "):
            anchor = _anchor(line)
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            items.append(f"- [{line[4:]}](#{anchor}{f'-{count}' if count else ''})")
    return items


def render(results: dict[str, dict], images: str = "benchmarks/results", page: str = "README.md") -> str:
    """Markdown for the Figures section. `images`: the plots' folder as seen from the page; `page`: the
    page's path in the repository, for figures that a benchmark names by their path there."""
    body = []
    for name, renderer in RENDERERS.items():
        if name in results:
            result = results[name]
            if result.get("figure"):
                result = {**result, "figure": posixpath.relpath(result["figure"], posixpath.dirname(page) or ".")}
            body += ["", *renderer(result, images), "", _provenance(result)]
    folder = posixpath.normpath(posixpath.join(posixpath.dirname(page), images))  # as seen from the repository root
    lines = [
        "## Figures",
        "",
        f"Generated by `python -m benchmarks.figures` from the JSON in [`{folder}/`]({images}); rerun the benchmarks with "
        "`AUDIODIFF_PAUSE_TRAINING=1 benchmarks/quiet.sh python -m benchmarks` (training paused while timing). "
        "Each table names the machine, the date and the command.",
    ]
    if not results:
        lines += ["", "No benchmark results yet."]
    else:
        lines += ["", *_contents(body)]
    return "\n".join(lines + body) + "\n"


def update_page(text: str, section: str) -> str:
    """`text` with everything between the figure markers replaced by `section`."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"markers {START} ... {END} not found (in that order); add them where the figures go")
    return text[: start + len(START)] + "\n" + section + text[end:]


def section_for(out: Path, results: Path) -> str:
    """The Figures section for the page `out`, its links relative to that page."""
    here = out.resolve().parent
    images = Path(os.path.relpath(results.resolve(), here)).as_posix()
    page = Path(os.path.relpath(out.resolve(), ROOT)).as_posix()
    return render(load_results(results), images, page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md", help="the page with the markers")
    parser.add_argument("--print", action="store_true", help="print the section instead of writing the page")
    args = parser.parse_args()
    section = section_for(args.out, args.results)
    if args.print:
        print(section)
        return
    try:
        args.out.write_text(update_page(args.out.read_text(), section))
    except ValueError as error:
        raise SystemExit(f"{args.out}: {error}") from None
    print(f"updated {args.out} ({len(section.splitlines())} lines between the markers)")


if __name__ == "__main__":
    main()
