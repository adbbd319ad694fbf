"""Figures sections on speed: the U-Net against its peers and by size, a generate call against a matrix
product, end-to-end generation, and training against threads. Each renderer: result JSON -> markdown lines."""

from __future__ import annotations

from pathlib import Path

from benchmarks.sections_common import number, table

__all__ = [
    "render_end_to_end",
    "render_generate_speed",
    "render_threads",
    "render_unet_speed",
    "render_unet_vs_peers",
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
            cells += [number(row and row["train_steps_per_s"], 3), number(row and row["sample_ms_per_step"], 1)]
        body.append(cells)
    lines += table(header, body) + [""]
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


def render_end_to_end(result: dict, images: str) -> list[str]:
    lines = ["### End-to-end generation speed (1 s of audio)", ""]
    body = [
        [
            row["vocoder"],
            str(row["batch"]),
            number(row["median_s"]),
            number(row["diffusion_s"]),
            number(row["vocoder_s"]),
            number(row["x_real_time"]),
        ]
        for row in result.get("rows", [])
    ]
    lines += table(["vocoder", "batch", "total s", "diffusion s", "vocoder s", "x real time"], body) + [""]
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


def render_unet_speed(result: dict, images: str) -> list[str]:
    lines = ["### U-Net speed by size and precision", ""]
    body = [
        [
            str(row["dims"]),
            row["size"],
            row["precision"],
            f"{row['parameters'] / 1e6:.2f}M",
            number(row["train_steps_per_s"], 3),
            number(row["sample_ms_per_step"], 1),
        ]
        for row in result.get("results", [])
    ]
    return lines + table(["dims", "size", "precision", "params", "train steps/s", "sample ms/step"], body)


def render_generate_speed(result: dict, images: str) -> list[str]:
    lines = [f"### Generate speed: a `{result.get('model')}` generate call against a matrix product", ""]
    peak = result.get("matmul_gflop_per_s", {})
    body = [
        [
            str(row["batch"]),
            row["precision"],
            "yes" if row["channels_last"] else "no",
            "yes" if row["compile"] else "no",
            number(row["seconds"], 3),
            number(row["gflop_per_s"], 1),
            f"{row['of_matmul']:.0%}",
            f"{row['of_fp32_matmul']:.0%}",
            number(row.get("first_call_seconds"), 1),
        ]
        for row in result.get("results", [])
    ]
    lines += table(
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


def render_threads(result: dict, images: str) -> list[str]:
    lines = ["### Training speed against threads, quiet and beside a busy core", ""]
    threads = sorted({row["threads"] for row in result["rows"]})
    body = [
        [
            f"{busy} busy core(s)",
            *[
                number(
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
    lines += table(["machine", *[f"{t} thread(s), s/step" for t in threads]], body) + [""]

    def threads_by_load(choice: dict) -> str:
        return ", ".join(f"{count} with {busy}" for busy, count in choice.items())

    lines.append(
        f"{result['model']}, {result['precision']}. Fastest: {threads_by_load(result['fastest_threads'])}; "
        f"`train.threads=0` picks {threads_by_load(result['auto_choice'])}."
    )
    return lines
