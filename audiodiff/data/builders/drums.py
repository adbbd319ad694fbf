"""Real drum one-shots from three Debian packages, nothing downloaded:

- `hydrogen-drumkits`: the Hydrogen kits' samples, each instrument's velocity layers as its
  drumkit.xml gives them (min/max velocity 0..1 -> MIDI 1..127);
- `sonic-pi-samples`: Sonic Pi's drum_*, bd_*, sn_*, elec_*, perc_* and tabla_* samples, as three
  "kits" by prefix (SONICPI_KITS): its acoustic drum_ kit (soft/hard layers), its electronic hits
  (bd_, sn_, elec_) and its hand percussion (perc_, tabla_);
- `avldrums.lv2-soundfont`: AVL's Black Pearl and Red Zeppelin soundfonts rendered by fluidsynth
  note by note and layer by layer (the velocity layers read from the sf2, each played at its
  middle velocity, ringing out up to the cap), the kit's mono samples with the soundfont's pan
  folded back. fluidsynth's velocity curve makes the soft layers far quieter (about -50 dBFS at
  velocity 13) than the same samples in the Hydrogen kit, as the avldrums plugin plays them.

Every clip gets a class from its instrument's name (else its file name) by LABEL_RULES; an
unlabelled one is dropped and counted. Clips keep their channels, go to 44.1 kHz once
(band-limited), lose leading and trailing silence (-60 dB) and are cut at `max_seconds` with a
fade. Each manifest row carries the numbers measured on the written clip (`peak_db`, `decay`,
`centroid`, `brightness`, see `real.describe`), the velocity layer where the kit has one, and the
provenance (package, version, original path, licence, original rate and channels).

Splits are by recorded kit: KIT_ALIASES names one kit that two packages ship (the Black Pearl),
and kits whose clips share a recording (found by `real.group_shared`: AVL's Red Zeppelin reuses
the Black Pearl's hi-hats and splash and Gimme A Hand's clap, tambourine and maraca) form one
group; whole groups go to train, valid or test (`real.assign_group_splits`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

import numpy as np

from audiodiff.data.builders.common import (
    BuildError,
    BuildReport,
    collect_rows,
    parallel_map,
    prepare_out_dir,
    require_tool,
    tool_version,
    write_outputs,
)
from audiodiff.data.builders.real import (
    ClipSkipped,
    Recording,
    Soundfont,
    assign_group_splits,
    cap_length,
    clipped_share,
    debian_licence,
    describe,
    fold_pan,
    group_shared,
    hits_midi,
    package_version,
    plot_class_balance,
    read_recording,
    read_soundfont,
    render_midi,
    require_packages,
    resample_channels,
    signature,
    sound_bounds,
    summary,
    write_wav,
)

__all__ = ["KIT_ALIASES", "LABEL_RULES", "SOURCES", "add_arguments", "build_drums", "label_for", "run"]

SAMPLE_RATE = 44_100
UNLABELLED = "unlabelled (no class pattern matches)"
NOT_ONE_SHOT = "not a one-shot drum (roll, loop, effect, empty)"
SHARED_NOTE = "layers naming a sample the kit already uses (used once)"

# (class, pattern) on the normalised name (lower case, words split at camelCase, digits and
# punctuation; parentheses dropped); the first match wins; None drops the clip on purpose.
_HAT = r"(hi hat|hihat|hat|hh|hhat)"
LABEL_RULES: tuple[tuple[str | None, str], ...] = (
    (None, r"\b(roll|loop|fx|zap|whistle|swoosh|woosh|till|door|empty ?sample)\b"),
    ("hihat_open", rf"\b{_HAT}\b.*\b(open|opened|op|semi ?open|semi|swish?|free)\b|\b(open|opened|semi ?open)\b.*\b{_HAT}\b|\bohh\b|\bcymbal open\b"),
    ("hihat_closed", rf"\b{_HAT}\b|\bchh\b|\bcymbal (closed|pedal)\b"),  # pedal and choked hats are closed
    ("kick", r"\b(kick|bass ?drum|bd)\b|\bdrum bass\b"),
    ("clap", r"\b(clap|claps|handclap)\b"),
    ("snare", r"\b(snare|sn|sd|rimshot)\b"),  # a snare's rimshot is a snare hit
    ("rim", r"\b(rim|side ?stick|stick)\b"),  # side stick, rim click
    ("tom", r"\b(tom|toms|floortom|tm)\b"),
    ("ride", r"\b(ride|crash) (bell|cup)\b|\bride ?cup\b|\bpaiste bell\b"),  # bells of rides (the Black Pearl's "Paiste Bell")
    ("crash", r"\b(crash|splash|china|cymbal)\b"),
    ("ride", r"\bride\b"),
    ("percussion", r"\b(cowbell|tambourine|conga|bongo|djembe|sangban|dununba|kenkeni|cajon|clave|woodblock|wood|"
                   r"agogo|maraca|shaker|triangle|snaps?|fingersnap|waterglass|tabla|timbale|guiro|cabasa|perc)\b"),
)  # fmt: skip
LABEL_WORDS = {
    "kick": "kick drum", "snare": "snare", "hihat_closed": "closed hi-hat", "hihat_open": "open hi-hat",
    "tom": "tom", "crash": "crash cymbal", "ride": "ride cymbal", "clap": "hand clap", "rim": "rim click",
    "percussion": "percussion",
}  # fmt: skip
# one recorded kit shipped by two packages -> one kit id (keys are `slug`s of the packages' names)
KIT_ALIASES = {
    "the_black_pearl_1_0": "black_pearl",
    "black_pearl_4_lv2": "black_pearl",
    "red_zeppelin_4_lv2": "red_zeppelin",
}
SONICPI_KITS = {
    "drum": "sonicpi_drum", "bd": "sonicpi_electronic", "sn": "sonicpi_electronic", "elec": "sonicpi_electronic",
    "perc": "sonicpi_perc", "tabla": "sonicpi_perc",
}  # fmt: skip


def normalise(name: str) -> str:
    """'SabianHatSemiOpen (14")' -> 'sabian hat semi open'."""
    name = re.sub(r"\(.*?\)", " ", name)
    name = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", name)
    return " ".join(re.sub(r"[^a-z0-9]+", " ", name.lower()).split())


def label_for(*names: str) -> tuple[str | None, str]:
    """(class, "") from the first name that a rule matches, or (None, why it is dropped)."""
    for name in names:
        text = normalise(name)
        for label, pattern in LABEL_RULES:
            if re.search(pattern, text):
                return label, ("" if label else NOT_ONE_SHOT)
    return None, UNLABELLED


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def kit_id(name: str) -> str:
    return KIT_ALIASES.get(slug(name), slug(name))


@dataclasses.dataclass(frozen=True)
class Hit:
    """One clip to make: a sample file (or a soundfont note at one velocity) and what is known of it."""

    source: str
    kit: str
    kit_name: str
    instrument: str
    label: str
    original: str
    out_name: str
    licence: str
    package_licence: str
    layer: int | None = None
    layers: int = 1
    velocity: int | None = None
    velocity_min: int | None = None
    velocity_max: int | None = None
    note: int | None = None  # the soundfont's MIDI note (AVL)
    sample: str | None = None  # the soundfont's sample name (AVL)

    @property
    def example(self) -> str:
        return f"{self.kit_name} / {self.instrument} ({self.sample or Path(self.original).name})"


def _midi_range(low: float, high: float) -> tuple[int, int]:
    low_midi = min(127, max(1, round(127 * low)))
    return low_midi, min(127, max(low_midi, round(127 * high)))


# --------------------------------------------------------------------------------------------
# Sources: each checks its package, plans its jobs (tuples of hits) and renders a job to recordings.


class _Source:
    """A package's clips: `missing()` says what is not installed, `plan` lists the jobs (tuples of
    hits, counting what it drops in the report) and `render` turns a job into recordings (here:
    files read as recorded) with, for each, the audio whose signature finds shared recordings."""

    name, package, default_root = "", "", ""

    def __init__(self, root: str | os.PathLike | None, doc_root: str | os.PathLike, max_seconds: float):
        self.root, self.doc_root, self.max_seconds = Path(root or self.default_root), doc_root, max_seconds

    def render(self, job: tuple[Hit, ...]) -> list[tuple[Hit, Recording | ClipSkipped, np.ndarray | None]]:
        out = []
        for hit in job:
            try:
                out.append((hit, read_recording(hit.original), None))
            except ClipSkipped as skipped:
                out.append((hit, skipped, None))
        return out


class HydrogenSource(_Source):
    name, package, default_root = "hydrogen", "hydrogen-drumkits", "/usr/share/hydrogen/data/drumkits"

    def missing(self) -> str | None:
        return None if any(self.root.glob("*/drumkit.xml")) else f"{self.root}/*/drumkit.xml"

    def plan(self, report: BuildReport) -> list[tuple[Hit, ...]]:
        jobs = []
        for xml in sorted(self.root.glob("*/drumkit.xml")):
            try:
                tree = ElementTree.parse(xml).getroot()
                for element in tree.iter():  # kits with and without the Hydrogen namespace read alike
                    element.tag = element.tag.rsplit("}", 1)[-1]
                jobs += [(hit,) for hit in self.kit_hits(xml.parent, tree, report)]
            except (ElementTree.ParseError, OSError, ValueError) as error:  # ValueError: a velocity that is no number
                report.skip("malformed drumkit.xml (kit skipped)", f"{xml}: {error}")
        return jobs

    def kit_hits(self, folder: Path, tree: ElementTree.Element, report: BuildReport) -> list[Hit]:
        kit_name = (tree.findtext("name") or folder.name).strip()
        package_licence = debian_licence(self.package, f"drumkits/{folder.name}.h2drumkit", self.doc_root)
        licence = " ".join((tree.findtext("license") or "").split()) or package_licence
        hits, used = [], set()
        for instrument in tree.iter("instrument"):
            name = (instrument.findtext("name") or "").strip()
            layers = [(float(layer.findtext("min") or 0), float(layer.findtext("max") or 1), (layer.findtext("filename") or "").strip())
                      for layer in instrument.iter("layer")]  # fmt: skip
            if not layers and (instrument.findtext("filename") or "").strip():  # the old one-sample format
                layers = [(0.0, 1.0, instrument.findtext("filename").strip())]
            layers = sorted(layer for layer in layers if layer[2])
            if not layers:
                continue
            label, why = label_for(name, Path(layers[0][2]).stem)
            for index, (low, high, filename) in enumerate(layers):
                if filename in used:
                    report.notes[SHARED_NOTE] = report.notes.get(SHARED_NOTE, 0) + 1
                    continue
                used.add(filename)
                if label is None:
                    report.skip(why, f"{kit_name} / {name or '(no name)'} ({filename})")
                    continue
                velocity_min, velocity_max = _midi_range(low, high)
                several = len(layers) > 1
                hits.append(Hit(
                    self.name, kit_id(kit_name), kit_name, name, label, str(folder / filename),
                    f"hydrogen-{slug(folder.name)}-{slug(Path(filename).stem)}", licence, package_licence,
                    index if several else None, len(layers), (velocity_min + velocity_max) // 2 if several else None,
                    velocity_min if several else None, velocity_max if several else None,
                ))  # fmt: skip
        return hits


class SonicPiSource(_Source):
    name, package, default_root = "sonicpi", "sonic-pi-samples", "/usr/share/sonic-pi/samples"

    def files(self) -> list[Path]:
        return sorted(path for path in self.root.glob("*.flac") if path.stem.split("_")[0] in SONICPI_KITS)

    def missing(self) -> str | None:
        return None if self.files() else f"{self.root}/{{drum,bd,sn,elec,perc,tabla}}_*.flac"

    def plan(self, report: BuildReport) -> list[tuple[Hit, ...]]:
        jobs = []
        for path in self.files():
            kit = SONICPI_KITS[path.stem.split("_")[0]]
            label, why = label_for(path.stem)
            if label is None:
                report.skip(why, f"{kit} / {path.name}")
                continue
            instrument, _, strength = path.stem.rpartition("_")
            layer = {"soft": 0, "hard": 1}.get(strength)  # drum_*_soft / drum_*_hard: two layers
            licence = debian_licence(self.package, f"etc/samples/{path.name}", self.doc_root)
            jobs.append((Hit(
                self.name, kit, kit, instrument if layer is not None else path.stem, label, str(path),
                f"sonicpi-{slug(path.stem)}", licence, licence, layer, 2 if layer is not None else 1,
            ),))  # fmt: skip
        return jobs


class AvlSource(_Source):
    """AVL drum kits: each note of the soundfont rendered by fluidsynth once per velocity layer."""

    name, package, default_root = "avl", "avldrums.lv2-soundfont", "/usr/share/sounds/sf2"
    slot_margin = 0.5  # seconds of each render slot past the cap; All Sound Off ends it

    def __init__(self, root: str | os.PathLike | None, doc_root: str | os.PathLike, max_seconds: float):
        super().__init__(root, doc_root, max_seconds)
        self.fonts: dict[str, Soundfont] = {}
        self.fluidsynth = ""

    def missing(self) -> str | None:
        return None if any(self.root.glob("*_LV2.sf2")) else f"{self.root}/*_LV2.sf2"

    def plan(self, report: BuildReport) -> list[tuple[Hit, ...]]:
        self.fluidsynth = require_tool("fluidsynth", "fluidsynth")
        jobs = []
        for path in sorted(self.root.glob("*_LV2.sf2")):
            try:
                font = self.fonts[str(path)] = read_soundfont(path)
            except (ValueError, OSError, IndexError) as error:
                report.skip("malformed soundfont (kit skipped)", f"{path}: {error}")
                continue
            licence = debian_licence(self.package, f"sf2/{path.name}", self.doc_root)
            for note, layers in font.notes.items():
                stem = max((re.sub(r"^\d+-|-\d*$", "", sample) for *_, sample in layers), key=len)
                label, why = label_for(stem)
                if label is None:
                    for *_, sample in layers:
                        report.skip(why, f"{path.stem} / note {note} ({sample})")
                    continue
                several = len(layers) > 1
                jobs.append(tuple(
                    Hit(self.name, kit_id(path.stem), path.stem, stem, label, str(path),
                        f"avl-{slug(path.stem)}-{note:03d}-v{(low + high) // 2:03d}", licence, licence,
                        index if several else None, len(layers), (low + high) // 2, low, high, note, sample)
                    for index, (low, high, sample) in enumerate(layers)
                ))  # fmt: skip
        return jobs

    def render(self, job: tuple[Hit, ...]) -> list[tuple[Hit, Recording | ClipSkipped, np.ndarray | None]]:
        font = self.fonts[job[0].original]
        slot_seconds = self.max_seconds + self.slot_margin
        midi = hits_midi(font, job[0].note, [hit.velocity for hit in job], self.max_seconds, slot_seconds)
        try:
            audio, rate = render_midi(self.fluidsynth, font, midi)
        except RuntimeError as error:
            return [(hit, ClipSkipped(f"fluidsynth failed: {error}"), None) for hit in job]
        slot = int(round(slot_seconds * rate))
        out = []
        for k, hit in enumerate(job):
            stereo = np.ascontiguousarray(audio[:, k * slot : (k + 1) * slot])
            out.append((hit, Recording(fold_pan(stereo), rate, "FLOAT"), font.samples[hit.sample][None]))
        return out


SOURCES = {"hydrogen": HydrogenSource, "sonicpi": SonicPiSource, "avl": AvlSource}


# --------------------------------------------------------------------------------------------
# Clips


def _dynamic(hit: Hit) -> str | None:
    """'softly' / 'medium' / 'hard' from the velocity, else from the layer's place among the layers."""
    if hit.velocity is not None:
        position = hit.velocity / 127
    elif hit.layer is not None:
        position = hit.layer / max(hit.layers - 1, 1)
    else:
        return None
    return "hit softly" if position < 0.34 else "hit medium" if position < 0.67 else "hit hard"


@dataclasses.dataclass(frozen=True)
class _Clipper:
    """Turns a job's recordings into written clips and manifest rows (or skips, (reason, example))."""

    sources: dict
    out_dir: Path
    max_seconds: float
    versions: dict
    max_clipped: float = 0.5

    def __call__(self, job: tuple[Hit, ...]) -> list[dict | tuple[str, str]]:
        out: list[dict | tuple[str, str]] = []
        for hit, recording, reference in self.sources[job[0].source].render(job):
            try:
                if isinstance(recording, ClipSkipped):
                    raise recording
                out.append(self.clip(hit, recording, reference))
            except ClipSkipped as skipped:
                out.append((str(skipped), hit.example))
        return out

    def clip(self, hit: Hit, recording: Recording, reference: np.ndarray | None) -> dict:
        bounds = sound_bounds(recording.audio)
        if bounds is None:
            raise ClipSkipped("silent")
        if clipped_share(recording.audio[:, bounds[0] : bounds[1]]) > self.max_clipped:
            raise ClipSkipped("clipped for most of its length")
        audio = resample_channels(recording.audio, recording.sample_rate, SAMPLE_RATE)
        start, end = sound_bounds(audio) or (0, audio.shape[-1])
        tail = int(0.005 * SAMPLE_RATE)  # keep 5 ms past the last sample within 60 dB of the peak
        audio, cut = cap_length(
            audio[:, start : end + tail], int(self.max_seconds * SAMPLE_RATE), int(0.05 * SAMPLE_RATE)
        )
        if audio.shape[-1] < int(0.005 * SAMPLE_RATE):
            raise ClipSkipped("shorter than 5 ms")
        path = f"wavs/{hit.out_name}.wav"
        subtype = "PCM_16" if recording.subtype in ("PCM_16", "PCM_U8", "PCM_S8") else "PCM_24"
        write_wav(self.out_dir / path, audio, SAMPLE_RATE, subtype)
        numbers = describe(audio, SAMPLE_RATE)
        words = [
            LABEL_WORDS[hit.label],
            _dynamic(hit),
            f"from the kit {hit.kit_name} ({self.sources[hit.source].package})",
        ]
        return {
            "path": path, "label": hit.label, "text": ", ".join(word for word in words if word), "split": "",
            "kit": hit.kit, "kit_name": hit.kit_name, "instrument": hit.instrument,
            "seconds": round(audio.shape[-1] / SAMPLE_RATE, 4), "sample_rate": SAMPLE_RATE, "channels": audio.shape[0],
            "layer": hit.layer, "layers": hit.layers, "velocity": hit.velocity,
            "velocity_min": hit.velocity_min, "velocity_max": hit.velocity_max, "note": hit.note, **numbers,
            "cut": cut, "source": self.sources[hit.source].package, "package_version": self.versions[hit.source],
            "original_path": hit.original, "original_sample": hit.sample, "licence": hit.licence,
            "package_licence": hit.package_licence, "original_rate": recording.sample_rate,
            "original_channels": recording.channels,
            "_signature": signature(reference if reference is not None else audio),
        }  # fmt: skip


# --------------------------------------------------------------------------------------------
# Builder


def build_drums(
    out_dir: str | os.PathLike,
    sources: tuple[str, ...] = ("hydrogen", "sonicpi", "avl"),
    roots: dict[str, str | os.PathLike] | None = None,
    doc_root: str | os.PathLike = "/usr/share/doc",
    max_seconds: float = 4.0,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    *,
    overwrite: bool = False,
) -> BuildReport:
    """Build drum one-shots from the Debian packages of `sources` (see SOURCES; `roots` may point a
    source at another folder) into `out_dir` (wavs/, manifest.jsonl, info.json, class_balance.png).
    The same packages give the same clips and splits."""
    unknown = [name for name in sources if name not in SOURCES]
    if unknown or not sources:
        raise BuildError(f"sources={list(sources)}: choose from {', '.join(SOURCES)} (comma-separated)")
    if max_seconds <= 0.1:
        raise ValueError(f"max_seconds={max_seconds}: give the longest clip in seconds, above 0.1")
    roots = roots or {}
    chosen = {name: SOURCES[name](roots.get(name), doc_root, max_seconds) for name in sources}
    missing = {source.package: where for source in chosen.values() if (where := source.missing())}
    present = ",".join(name for name, source in chosen.items() if source.package not in missing)
    require_packages(missing, f", or leave them out with --sources {present}" if present else "")
    started = time.perf_counter()
    out_dir = prepare_out_dir(out_dir, overwrite)
    report = BuildReport("drums", out_dir, out_dir / "manifest.jsonl")
    jobs = [job for source in chosen.values() for job in source.plan(report)]
    versions = {name: package_version(source.package) for name, source in chosen.items()}
    clipper = _Clipper(chosen, out_dir, max_seconds, versions)
    results = parallel_map(clipper, jobs, workers, progress, "drums", sum(map(len, jobs)), len)
    rows = collect_rows((result for job_results in results for result in job_results), report)
    if not rows:
        raise BuildError(
            f"no usable drum clip in {', '.join(s.package for s in chosen.values())}; skipped: {report.skipped}"
        )
    group_of, joins = group_shared([row["kit"] for row in rows], [row.pop("_signature") for row in rows])
    split_of = assign_group_splits(Counter(group_of[row["kit"]] for row in rows), seed)
    for row in rows:
        row["kit_group"], row["split"] = group_of[row["kit"]], split_of[group_of[row["kit"]]]
    report.notes["cut at the cap (with a fade)"] = sum(row["cut"] for row in rows)
    plot_class_balance(rows, out_dir / "class_balance.png", f"drums: {len(rows)} clips by class and split")
    info = {
        "builder": "drums",
        "args": {"sources": list(sources), "roots": {n: str(s.root) for n, s in chosen.items()}, "max_seconds": max_seconds, "seed": seed},
        "packages": {source.package: versions[name] for name, source in chosen.items()},
        "fluidsynth": tool_version(chosen["avl"].fluidsynth) if "avl" in chosen else None,
        "label_rules": [[label, pattern] for label, pattern in LABEL_RULES],
        "kit_aliases": KIT_ALIASES,
        "sonicpi_kits": SONICPI_KITS,
        "shared_recordings": [{"kit": a, "other_kit": b, "clip": rows[i]["path"], "other_clip": rows[j]["path"]} for a, b, i, j in joins],
        "split_rule": "whole kit groups (kits that share a recording, or alias one kit); held-out splits take groups "
                      "in the order of a hash of the group and the seed until each holds 10% of the clips and 2 groups, "
                      "passing over a group that would take it past 20%",
        "kits": {split: sorted({row["kit"] for row in rows if row["split"] == split}) for split in ("train", "valid", "test")},
        "summary": summary(rows),
    }  # fmt: skip
    return write_outputs(report, rows, info, started)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, help="output folder (wavs/, manifest.jsonl, info.json, class_balance.png)"
    )
    parser.add_argument(
        "--sources", default=",".join(SOURCES), help=f"comma-separated, from {','.join(SOURCES)} (default: all)"
    )
    for name, source in SOURCES.items():
        parser.add_argument(
            f"--{name}-root", help=f"where {source.package} keeps its files (default: {source.default_root})"
        )
    parser.add_argument("--doc-root", default="/usr/share/doc", help="where the packages' copyright files are")
    parser.add_argument("--max-seconds", type=float, default=4.0, help="longer clips are cut here, with a fade")
    parser.add_argument("--seed", type=int, default=0, help="the split hash")
    parser.add_argument("--workers", type=int, help="parallel jobs (default: one per CPU)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing build in --out")


def run(args: argparse.Namespace) -> int:
    roots = {name: getattr(args, f"{name}_root") for name in SOURCES if getattr(args, f"{name}_root", None)}
    sources = tuple(name.strip() for name in args.sources.split(",") if name.strip())
    report = build_drums(
        args.out, sources, roots, args.doc_root, args.max_seconds, args.seed, args.workers, overwrite=args.overwrite
    )
    print(report)
    info = json.loads((report.out_dir / "info.json").read_text(encoding="utf-8"))
    print(info["summary"])
    print(f"  held out: valid {', '.join(info['kits']['valid'])}; test {', '.join(info['kits']['test'])}")
    print(f"  class balance: {report.out_dir / 'class_balance.png'}")
    return 0
