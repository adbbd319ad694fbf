"""Figures sections on what the generative models make: quality against steps, distilled students,
trade-offs, likelihood, asked pitch and guidance, inversion, editing and drums. Each renderer: result JSON ->
markdown lines."""

from __future__ import annotations

from benchmarks.sections_common import guidance_phrase, measured_model, number, table

__all__ = [
    "render_distill",
    "render_drums",
    "render_edit",
    "render_guidance_sweep",
    "render_inversion",
    "render_likelihood",
    "render_notes_pitch",
    "render_samplers",
    "render_tradeoffs",
]


def render_samplers(result: dict, images: str) -> list[str]:
    lines = ["### Sample quality against sampling steps", ""]
    curve = [row for row in result.get("rows", []) if row.get("curve")]
    steps = sorted({row["steps"] for row in curve})
    body = []
    for sampler in dict.fromkeys(row["sampler"] for row in curve):
        values = {row["steps"]: row["frechet"] for row in curve if row["sampler"] == sampler}
        body.append([sampler] + [number(values.get(step)) for step in steps])
    lines += table(["sampler"] + [f"{step} steps" for step in steps], body) + [""]
    lines.append(
        f"Fréchet distance in the evaluation classifier's features against {result.get('num_reference_clips')} real "
        f"test clips, {result.get('num_clips')} generated clips, guidance {result.get('guidance')}, vocoder "
        f"{result.get('vocoder')}; model {measured_model(result)}. "
        f"Floor (real train clips, as many): {number((result.get('floor') or {}).get('frechet'))}."
    )
    target = result.get("target")
    if target:
        lines += [
            "",
            f"- target: {target['sampler']} at {target['few_steps']} steps within {target['allowed_gap']:.0%} of "
            f"{target['many_steps']} steps: {number(target['few_frechet'])} vs {number(target['many_frechet'])} "
            f"({target['relative_gap']:+.1%}): {'met' if target['met'] else '**missed**'}",
        ]
    if result.get("plot"):
        lines += ["", f"![Fréchet distance against steps]({images}/{result['plot']})"]
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
            number(row["frechet"]),
            number(row["accuracy"], 3),
            number(row["seconds_per_clip"], 3),
        ]
        for row in [reference, *result.get("rows", [])]
    ]
    lines += table(
        ["model", "sampler, steps", "guidance", "calls per clip", "Fréchet", "accuracy", "s per clip"], body
    ) + [""]
    lines.append(
        f"{result.get('num_clips')} clips (10 digits), Fréchet distance in the evaluation classifier's features "
        f"against the real test split; floor (real train clips, as many): {number(result.get('floor'))}. "
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


def render_likelihood(result: dict, images: str) -> list[str]:
    lines = ["### Likelihood from the probability-flow ODE: the exact Gaussian case, then audio", ""]
    body = [
        [
            str(row["steps"]),
            str(row.get("probes", 1)),
            number(row["true_nll_nats"], 3),
            number(row["estimated_nll_nats"], 3),
            f"{row['error']:+.3f} ± {row['standard_error']:.3f}",
        ]
        for row in result.get("gaussian", [])
    ]
    lines += table(["RK4 steps", "probes", "exact NLL (nats)", "estimate", "error ± SE"], body)
    audio = result.get("audio")
    if audio:
        lines += [
            "",
            f"{audio['checkpoint']}: NLL in bits/dim of its {audio['space']} ({audio['dims']} dimensions), "
            f"{audio['clips']} held-out clips, {audio['steps']} steps:",
            "",
        ]
        lines += table(
            ["clips", "NLL (bits/dim)", "standard error"],
            [
                [name, number(row["mean_bits_per_dim"], 3), number(row["standard_error"], 3)]
                for name, row in audio["sets"].items()
            ],
        )
    return lines


def render_tradeoffs(result: dict, images: str) -> list[str]:
    report = str(result.get("plot") or "tradeoffs.png").rsplit(".", 1)[0] + ".md"  # written beside its plot
    lines = [
        "### Speed and quality: samplers, steps, students, vocoders",
        "",
        f"Headline rows of [the full report]({images}/{report}) ({result.get('num_clips')} clips per case):",
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
            number(floor.get("frechet")),
            number(floor.get("accuracy"), 3),
            number(floor.get("recall"), 3),
        ]
    ]
    body += [
        [
            row["case"],
            str(row["steps"]),
            number(row["seconds_per_clip"], 3),
            number(row["frechet"]),
            number(row["accuracy"], 3),
            number(row["recall"], 3),
        ]
        for row in chosen
    ]
    lines += table(["case", "steps", "seconds/clip", "Fréchet", "accuracy", "recall"], body)
    return lines + ["", f"![trade-off]({images}/{result['plot']})"] if result.get("plot") else lines


def render_notes_pitch(result: dict, images: str) -> list[str]:
    lines = ["### Notes: asked pitch and instrument", ""]
    body = [
        [
            side,
            number(row.get("within_50_cents"), 3),
            str(row.get("unvoiced")),
            number(row.get("median_abs_cents"), 1),
            number(row.get("family_accuracy"), 3),
        ]
        for side, row in (("model", result["model"]), ("real notes", result["real_floor"]))
    ]
    lines += table(["", "F0 within 50 cents", "no F0 found", "median |cents|", "family recognised"], body)
    sampling = result.get("sampling")
    heard = (
        f", {sampling['steps']} steps, {guidance_phrase(sampling)}, vocoder {sampling['vocoder']}" if sampling else ""
    )
    return lines + [
        "",
        f"{result.get('notes')} held-out notes, model {result['model'].get('source')} (training step "
        f"{result['model'].get('training_step')}{heard}); targets: {result.get('targets')}.",
    ]


def render_guidance_sweep(result: dict, images: str) -> list[str]:
    lines = ["### Notes: guidance that favours the instrument, swept", ""]
    body = []
    for row in result["rows"]:
        pitch = row.get("pitch_200") or {}
        shapes = row["named_shapes_by_kind"]
        body.append(
            [
                row["setting"],
                number(pitch.get("within_50_cents"), 3),
                number(pitch.get("family_accuracy"), 3),
                number(row["held_out_gestures"]["frames_within_50_cents"], 3),
                number(row["named_shapes_frames_within_50_cents"], 3),
                number(shapes["steps"], 3),
                number(shapes["vibrato"], 3),
                number(row["vibrato_f0_r"], 2),
            ]
        )
    lines += table(
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
        [name, number(row["frechet"], 1), number(row["recall"], 3), number(row["accuracy"], 3)]
        for name, row in result["eval_label_only_78_clips"].items()
        if isinstance(row, dict)
    ]
    lines += [
        "Family asked alone (`audiodiff eval`, 78 clips; Fréchet floor "
        f"{result['eval_label_only_78_clips']['floor']}):",
        "",
    ]
    return lines + table(["guidance", "Fréchet distance", "recall", "classifier accuracy"], evals)


def render_inversion(result: dict, images: str) -> list[str]:
    lines = ["### Inversion round trip: a clip to noise and back", ""]
    body = [
        [
            steps,
            number(row["log_mel_l1_60db"].get("refined"), 3),
            number(row["log_mel_l1_60db"].get("plain"), 3),
            number(row["log_mel_l1_60db"].get("vary_1"), 3),
            number(row.get("refined_over_vary_1"), 3),
            number(row["model_space_snr_db"].get("refined"), 1),
            number(row["model_space_snr_db"].get("plain"), 1),
        ]
        for steps, row in result.get("results", {}).items()
    ]
    lines += table(
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
            number(row.get("target_family"), 3),
            number(row.get("onset_within_20ms"), 3),
            number(row.get("median_onset_shift_ms"), 1),
            number(row.get("f0_within_50_cents"), 3),
        ]
        for method, row in result.get("results", {}).items()
    ]
    lines += table(
        ["method", "heard as the target family", "onset within 20 ms", "median onset shift ms", "F0 within 50 cents"],
        body,
    )
    return lines + [
        "",
        f"{result.get('clips')} held-out notes of model {result.get('model')} asked to become another family, "
        f"{result.get('steps')} steps, guidance {result.get('guidance')}; targets: {result.get('targets')}.",
    ]


def render_drums(result: dict, images: str) -> list[str]:
    lines = ["### Drums: what the model is asked against what it makes", ""]
    row = result.get("results", {})
    correlation = row.get("correlation") or {}
    lines += table(
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
                number(row.get("accuracy_generated"), 3),
                number(row.get("accuracy_real_held_out"), 3),
                number(correlation.get("decay"), 3),
                number(correlation.get("brightness"), 3),
                number(correlation.get("velocity_vs_peak_db"), 3),
            ]
        ],
    )
    settings = result.get("settings") or {}
    heard = (
        f", {settings['sampler']} {settings['steps']} steps, {guidance_phrase(settings)}"
        if "guidance" in settings
        else ""
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
