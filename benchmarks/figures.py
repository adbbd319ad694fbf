"""The "Figures" section of `docs/results.md`, generated from the benchmark JSON in
`benchmarks/results/`: a table of contents, then one subsection per benchmark with its table, its
plot, the machine, the date and the command. Only the text between the `<!-- figures:start -->`
and `<!-- figures:end -->` markers changes. The sections themselves are rendered in
`sections_speed.py`, `sections_models.py`, `sections_training.py` and `sections_vocoders.py`; this module
orders them (`RENDERERS`) and writes the page.

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
from benchmarks.sections_common import provenance
from benchmarks.sections_models import (
    render_distill,
    render_drums,
    render_edit,
    render_guidance_sweep,
    render_inversion,
    render_likelihood,
    render_notes_pitch,
    render_samplers,
    render_tradeoffs,
)
from benchmarks.sections_speed import (
    render_end_to_end,
    render_generate_speed,
    render_threads,
    render_unet_speed,
    render_unet_vs_peers,
)
from benchmarks.sections_training import render_adapter_vs_finetune, render_latent_vs_mel, render_own_data
from benchmarks.sections_vocoders import (
    render_upsampler,
    render_vocoder_fidelity,
    render_vocoder_real,
    render_vocoder_speed,
)

START, END = "<!-- figures:start -->", "<!-- figures:end -->"
ROOT = Path(__file__).resolve().parents[1]


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
    "tradeoffs_students": _retitled(
        render_tradeoffs, "### Few-step students at 1, 2 and 4 calls: adversarial beside progressive (same run)"
    ),
    "likelihood": render_likelihood,
    "notes_pitch": render_notes_pitch,
    "notes_pitch_fast": _retitled(
        render_notes_pitch, "### Notes: asked pitch and instrument, one-step student (notes-fast)"
    ),
    "guidance_sweep": render_guidance_sweep,
    "inversion": render_inversion,
    "edit": render_edit,
    "edit_strength_1": render_edit,
    "drums_mel": _retitled(render_drums, "### Drums: the bundled mel model, asked against what it makes"),
    "drums": _retitled(render_drums, "### Drums: the waveform model, asked against what it makes"),
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
            body += ["", *renderer(result, images), "", provenance(result)]
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
