"""Figures sections on training choices: fine-tuning on your own audio against from scratch, a LoRA
adapter against full fine-tuning, and latent against mel. Each renderer: result JSON -> markdown lines."""

from __future__ import annotations

from benchmarks.sections_common import number, provenance, table

__all__ = ["render_adapter_vs_finetune", "render_latent_vs_mel", "render_own_data"]


def render_own_data(result: dict, images: str) -> list[str]:
    lines = ["### Your own audio: fine-tuned from a bundled model against from scratch, same budget", ""]
    body = [
        [
            f"from {row['init_from']}" if row.get("init_from") else "from scratch",
            str(row["steps"]),
            f"{row['compute_seconds'] / 60:.1f}",
            number(row.get("final_loss"), 4),
            f"{row['decay_db_median']:.1f}",
        ]
        for row in result["runs"]
    ]
    body.append(["real clips (the training folder)", "", "", "", f"{result['real']['decay_db_median']:.1f}"])
    lines += table(
        ["start", "steps", "training minutes (step compute)", "last logged loss", "decay, dB (median)"], body
    ) + [""]
    lines.append(
        f"Folder: `{result['real']['folder']}`. Decay: the envelope's drop from its loudest 23 ms frame to the "
        "clip's last quarter (one-shots drop by tens of dB, stationary noise by a few). Samples share seeds."
    )
    lines += ["", f"![Spectrograms: fine-tuned, from scratch, real]({result['figure']})"]
    return lines


def render_latent_vs_mel(result: dict, images: str) -> list[str]:
    lines = ["### Latent against mel: U-Net cost at matched width, and the autoencoder's round trip", ""]
    rows = result.get("unet_speed") or []
    if rows:
        body = [
            [
                row["case"],
                " x ".join(map(str, row["input"])),
                number(row["sample_gflop_per_call"], 3),
                number(row["flops_fewer_x"], 1),
                number(row["train_s_per_step"], 3),
                number(row["train_faster_x"], 1),
                number(row["sample_ms_per_call"], 1),
                number(row["sample_faster_x"], 1),
            ]
            for row in rows
        ]
        lines += table(
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
                number(trip[side].get("mel_l1_60db"), 3),
                number(trip[side].get("mr_stft"), 3),
                number((trip[side].get("frechet") or {}).get("vocoded"), 2),
                number((trip[side].get("frechet") or {}).get("over_floor"), 2),
            ]
            for side in sides
        ]
        lines += [
            "",
            *table(
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
                number(row.get("training_steps"), 0),
                number(row.get("training_minutes"), 1),
                number(row.get("frechet_classifier"), 2),
                number(row.get("accuracy"), 3),
                number(row.get("recall_classifier"), 3),
            ]
            for name, row in equal["models"].items()
        ]
        floor = next(iter(equal["models"].values())).get("frechet_classifier_floor")
        lines += ["", *table(["digits model", "steps", "training minutes", "Fréchet", "accuracy", "recall"], body), ""]
        lines.append(
            f"Trained one at a time for the same budget of training-loop minutes and scored by one classifier on the same "
            f"held-out clips (real floor {number(floor, 2)}); `scripts/digits-equal-time`."
        )
        if "machine" in equal:
            lines += ["", f"This table: {provenance(equal)}"]
    return lines


def render_adapter_vs_finetune(result: dict, images: str) -> list[str]:
    lines = ["### Your own audio: a LoRA adapter against full fine-tuning, same budget", ""]
    names = {"finetune": "full fine-tuning", "lora_rank8": "LoRA adapter, rank 8"}
    runs = {name: row for name, row in result.items() if isinstance(row, dict) and "frechet" in row}
    body = [
        [
            names.get(name, name),
            str(row.get("steps")),
            f"{number(row.get('frechet'))} ({number(row.get('floor'))})",
            number(row.get("precision"), 3),
            number(row.get("recall"), 3),
            number(row.get("coverage"), 3),
            str(row.get("peak_memory_mb")),
            number(row.get("export_mb")),
        ]
        for name, row in runs.items()
    ]
    lines += table(
        ["run", "steps", "Fréchet (real floor)", "precision", "recall", "coverage", "peak memory MB", "export MB"], body
    )
    load = result.get("load_seconds") or {}
    return lines + [
        "",
        f"From `{result.get('base')}`, {result.get('budget_minutes')} training minutes each, on {result.get('data')}. "
        f"The adapter: {result.get('adapter_parameters', 0):,} parameters, {result.get('adapter_share', 0):.1%} of "
        f"the base's {result.get('base_parameters', 0):,}; loading takes {number(load.get('base'))} s for the base, "
        f"{number(load.get('base_with_adapter'))} s with the adapter.",
    ]
