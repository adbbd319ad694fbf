"""Figures sections on vocoders and the upsampler: speed, fidelity on real clips through mel and back,
real recordings, and 16 to 44.1 kHz upsampling. Each renderer: result JSON -> markdown lines."""

from __future__ import annotations

from benchmarks.sections_common import number, table

__all__ = ["render_upsampler", "render_vocoder_fidelity", "render_vocoder_real", "render_vocoder_speed"]


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
            cells.append(number(row and row["x_real_time"], 1))
        body.append(cells)
    return lines + table(["vocoder", "params"] + [f"batch {b} x {s:g} s" for b, s in cases], body)


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
                    number(scores.get("mel_l1_60db"), 3),
                    number(scores.get("mr_stft"), 3),
                    number(scores.get("f0_within_20_cents"), 3),
                    number(fd.get("over_floor"), 2),
                ]
            )
    lines += table(
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


def render_vocoder_real(result: dict, images: str) -> list[str]:
    lines = ["### Vocoders on real recordings: held-out speakers, kits and tracks", ""]
    body = []
    for set_name, row in result.get("results", {}).items():
        for index, (name, scores) in enumerate(row.items()):
            body.append(
                [
                    set_name if index == 0 else "",
                    name,
                    number(scores.get("pesq_wb")),
                    number(scores.get("stoi"), 3),
                    number(scores.get("mr_stft"), 3),
                    number(scores.get("mel_l1_60db"), 3),
                    number(scores.get("f0_within_20_cents"), 3),
                    number(scores.get("real_time_factor"), 1),
                ]
            )
    lines += table(
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
            *[number(row[method].get(band), 3) for band in bands],
        ]
        for set_name, row in rows.items()
        for method in ("plain", "upsampler")
    ]
    lines += table(["held-out set", "clips", "method", *[f"LSD {band}" for band in bands]], body)
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
                f"{number(plain_speed, 1)}x): {verdict}"
            )
        else:
            below = target["lsd_added_band_below_plain"]
            verdicts.append(f"- {name}: LSD over the added band {below:.0%} below plain resampling's: {verdict}")
    if verdicts:
        lines += ["", *verdicts]
    if result.get("figure"):
        lines += ["", f"![Spectrograms: plain, upsampled, real]({result['figure']})"]
    return lines
