"""Recorded music from Debian's game-music packages, cut into clips of a few seconds.

- wesnoth-1.16-music: orchestral tracks, Ogg Vorbis at 44.1 kHz.
- warzone2100-music: three albums (album.json names the tracks, license.txt the album's licence),
  Ogg Opus at 48 kHz.
- nexuiz-music: electronic tracks, Ogg Vorbis inside the music.pk3 zip.

Tracker modules (.mod, .xm, .it, .s3m) are not recordings and are skipped. Each track: decoded
(ffmpeg, its own rate and channels) -> measured (length, rate, effective bandwidth, clipped share)
-> a track with nothing within 60 dB above `min_bandwidth` is not full-band and left out (its
figures stay in info.json) -> windows of `seconds` spread evenly over it, at most
`max_clips_per_track` -> each resampled once to 44.1 kHz, channels kept -> silent windows
skipped. One gain per track keeps its peak below full scale.

Splits are by work: a track and its variants (track3 and track3_enhanced, frantic and
frantic-old, defeat and defeat2) are one work, and within each package whole works go to test and
valid by a hash of their names (each split holds every package). The label is the package's
game (wesnoth, warzone2100, nexuiz).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from audiodiff.data.builders.common import BuildError, BuildReport, parallel_map, prepare_out_dir, write_outputs
from audiodiff.data.builders.real import (
    ClipSkipped,
    assign_group_splits,
    clipped_share,
    decode_with_ffmpeg,
    effective_bandwidth,
    licence_in_text,
    package_version,
    plot_field_balance,
    probe_audio,
    read_licence,
    require_packages,
    resample_channels,
    summary,
    write_wav,
)

__all__ = ["COLLECTIONS", "Track", "add_arguments", "build_music", "run", "work_of"]

GAMES_ROOT, DOC_ROOT = Path("/usr/share/games"), Path("/usr/share/doc")
TRACKER_MODULES = {".mod", ".xm", ".it", ".s3m", ".mptm"}
# extension -> (container ffprobe must find, codecs it may hold)
FORMATS = {".ogg": ("ogg", {"vorbis", "opus", "flac"}), ".opus": ("ogg", {"opus"}), ".flac": ("flac", {"flac"}),
           ".wav": ("wav", None), ".mp3": ("mp3", {"mp3"})}  # fmt: skip
VARIANT = re.compile(r"[-_]?(enhanced|old|revisited|remix)$")
SILENT_DB = -60.0  # a track or window whose RMS stays below this (dBFS) is silent


@dataclasses.dataclass(frozen=True)
class Track:
    """One recording of a package: where it is and what it is."""

    key: str  # "collection/album/stem", unique
    collection: str  # the label
    package: str
    album: str
    title: str
    artist: str | None
    work: str  # the track and its variants share one
    licence: str
    path: str  # a file, or the archive holding `member`
    member: str | None = None
    game: str = ""

    @property
    def original(self) -> str:
        return f"{self.path}:{self.member}" if self.member else self.path

    def caption(self) -> str:
        album = self.game if self.album == self.game else f"{self.game} ({self.album})"
        return f"game music from {album}: {self.title}" + (f", by {self.artist}" if self.artist else "")

    @property
    def extension(self) -> str:
        return os.path.splitext(self.member or self.path)[1].lower()

    def source(self) -> Path | bytes:
        """The file, or the archive member's bytes; ClipSkipped when it is not there."""
        if self.member is None:
            if not Path(self.path).is_file():
                raise ClipSkipped("missing file")
            return Path(self.path)
        try:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(self.member)
        except (OSError, KeyError, zipfile.BadZipFile):
            raise ClipSkipped("missing file") from None


def work_of(stem: str, stems: set[str]) -> str:
    """The work a track belongs to: its own stem, or that of the track it is a variant of
    ("track3_enhanced" of "track3", "frantic-old" of "frantic", "defeat2" of "defeat")."""
    bare = {other.rstrip("-_") for other in stems}
    base = VARIANT.sub("", stem).rstrip("-_")
    if base != stem.rstrip("-_") and base in bare:
        return base
    numbered = re.fullmatch(r"(.*[a-z])\d", stem)
    if numbered and numbered[1] in bare:
        return numbered[1]
    return stem.rstrip("-_")


def _title(stem: str) -> str:
    return re.sub(r"[-_]+", " ", stem).strip()


@dataclasses.dataclass(frozen=True)
class Collection:
    """One package's music: a folder of files (subclasses: albums, an archive)."""

    name: str
    package: str
    folder: str  # under the games root
    game: str

    def tracks(self, root: Path, doc_root: Path) -> list[Track]:
        folder = root / self.folder
        files = sorted(path for path in folder.iterdir() if path.suffix.lower() in {*FORMATS, *TRACKER_MODULES})
        stems = {path.stem for path in files}
        licence = read_licence(self.package, "*", doc_root)
        return [Track(f"{self.name}/{path.stem}", self.name, self.package, self.game, _title(path.stem), None,
                      work_of(path.stem, stems), licence, str(path), game=self.game) for path in files]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class AlbumCollection(Collection):
    """Album folders, each with an album.json naming its tracks and maybe a license.txt."""

    def tracks(self, root: Path, doc_root: Path) -> list[Track]:
        albums = sorted(path.parent for path in (root / self.folder).glob("*/album.json"))
        metas = {album: json.loads((album / "album.json").read_text("utf-8")) for album in albums}
        stems = {Path(entry["filename"]).stem for meta in metas.values() for entry in meta["tracks"]}
        tracks = []
        for album, meta in metas.items():
            licence_file = album / "license.txt"
            text = licence_file.read_text("utf-8", errors="replace") if licence_file.is_file() else ""
            for entry in meta["tracks"]:
                stem = Path(entry["filename"]).stem
                # a paragraph that starts with the track's name states its own licence (an exception)
                own = next((part for part in re.split(r"\n\s*\n", text) if part.strip().startswith(stem + " ")), "")
                licence = licence_in_text(own) or licence_in_text(text) or read_licence(self.package, "*", doc_root)
                tracks.append(Track(
                    f"{self.name}/{album.name}/{stem}", self.name, self.package, meta.get("title", album.name),
                    entry.get("title", _title(stem)), entry.get("author") or meta.get("author"), work_of(stem, stems),
                    licence, str(album / entry["filename"]), game=self.game,
                ))  # fmt: skip
        return tracks


@dataclasses.dataclass(frozen=True)
class ArchiveCollection(Collection):
    """A zip archive (Quake-style .pk3) holding the tracks."""

    def tracks(self, root: Path, doc_root: Path) -> list[Track]:
        with zipfile.ZipFile(root / self.folder) as archive:
            members = sorted(
                name for name in archive.namelist() if os.path.splitext(name)[1].lower() in {*FORMATS, *TRACKER_MODULES}
            )
        stems = {Path(member).stem for member in members}
        licence = read_licence(self.package, "*", doc_root)
        return [
            Track(f"{self.name}/{Path(member).stem}", self.name, self.package, self.game, _title(Path(member).stem),
                  None, work_of(Path(member).stem, stems), licence, str(root / self.folder), member, self.game)
            for member in members
        ]  # fmt: skip


COLLECTIONS = (
    Collection("wesnoth", "wesnoth-1.16-music", "wesnoth/1.16/data/core/music", "Battle for Wesnoth"),
    AlbumCollection("warzone2100", "warzone2100-music", "warzone2100/music/albums", "Warzone 2100"),
    ArchiveCollection("nexuiz", "nexuiz-music", "nexuiz/data/music.pk3", "Nexuiz"),
)


def clip_starts(total: int, length: int, cap: int) -> list[int]:
    """Starts of at most `cap` whole windows of `length` samples spread evenly over `total`."""
    count = total // length
    if count <= cap:
        return [index * length for index in range(count)]
    return [int(index) * length for index in np.round(np.linspace(0, count - 1, cap))]


@dataclasses.dataclass
class TrackResult:
    rows: list[dict]
    skips: list[tuple[str, str]]


class _Cutter:
    """Measures a track (first pass), then cuts a usable one into clips (second pass)."""

    def __init__(self, out_dir: Path, seconds: float, cap: int, min_bandwidth: int, sample_rate: int):
        self.out_dir, self.seconds, self.cap = out_dir, seconds, cap
        self.min_bandwidth, self.sample_rate = min_bandwidth, sample_rate

    def measure(self, track: Track) -> dict:
        """The track's figures; with "skipped" (the reason) when it is not usable."""
        facts = {"work": track.work, "licence": track.licence}
        try:
            audio, rate, probe = self.decode(track)
        except ClipSkipped as skip:
            return {**facts, "skipped": str(skip)}
        peak = float(np.abs(audio).max())
        facts.update(seconds=round(audio.shape[1] / rate, 1), rate=rate, channels=audio.shape[0], codec=probe["codec"],
                     bandwidth_hz=effective_bandwidth(audio, rate), clipped_share=round(clipped_share(audio), 5),
                     peak=round(peak, 4), windows=audio.shape[1] // int(round(self.seconds * rate)))  # fmt: skip
        if 10 * np.log10(float(np.mean(audio**2)) + 1e-20) < SILENT_DB:  # a codec's noise floor is no music
            facts["skipped"] = "silent"
        elif facts["clipped_share"] > 0.5:
            facts["skipped"] = "clipped for most of its length"
        elif facts["bandwidth_hz"] < self.min_bandwidth:
            facts["skipped"] = f"not full-band (nothing above {self.min_bandwidth / 1000:g} kHz)"
        elif not facts["windows"]:
            facts["skipped"] = f"shorter than {self.seconds:g} s"
        return facts

    def cut(self, item: tuple[Track, dict]) -> TrackResult:
        """Up to `cap` windows spread over the track, resampled once; one gain keeps the track's peak below 0 dBFS."""
        track, facts = item
        audio, rate, probe = self.decode(track)
        gain = min(1.0, 0.98 / facts["peak"])
        rows, skips = [], []
        length, margin = int(round(self.seconds * rate)), rate // 100  # margin: 10 ms each side against edge effects
        out_length, out_margin = int(round(self.seconds * self.sample_rate)), self.sample_rate // 100
        for number, start in enumerate(clip_starts(audio.shape[1], length, self.cap)):
            first = max(0, start - margin)
            window = resample_channels(
                audio[:, first : start + length + margin] * np.float32(gain), rate, self.sample_rate
            )
            offset = out_margin if first < start else 0
            clip = window[:, offset : offset + out_length]
            if 10 * np.log10(float(np.mean(clip**2)) + 1e-20) < SILENT_DB:
                skips.append(("silent clip", f"{track.original} at {start / rate:.0f} s"))
                continue
            name = f"wavs/{track.key.replace('/', '_')}_{number:03d}.wav"
            write_wav(self.out_dir / name, clip, self.sample_rate)
            rows.append({"path": name, "label": track.collection, "split": facts["split"], "text": track.caption(),
                         "seconds": round(clip.shape[1] / self.sample_rate, 4), "sample_rate": self.sample_rate,
                         "channels": clip.shape[0], "track": track.key, "title": track.title, "album": track.album,
                         "artist": track.artist, "work": track.work, "start_seconds": round(start / rate, 3),
                         "gain_db": round(20 * np.log10(gain), 2), "package": track.package,
                         "package_version": package_version(track.package), "original_path": track.original,
                         "licence": track.licence, "original_rate": rate, "original_channels": audio.shape[0],
                         "original_codec": probe["codec"], "bandwidth_hz": facts["bandwidth_hz"]})  # fmt: skip
        return TrackResult(rows, skips)

    @staticmethod
    def decode(track: Track) -> tuple[np.ndarray, int, dict]:
        """`[channels, samples]` at the file's own rate, its rate and ffprobe's facts; ClipSkipped
        for a tracker module, a missing or unreadable file, or one in another format than its name says."""
        if track.extension in TRACKER_MODULES:
            raise ClipSkipped("tracker module (not a recording)")
        source = track.source()
        probe = probe_audio(source)
        container, codecs = FORMATS[track.extension]
        if container not in probe["container"].split(",") or (codecs and probe["codec"] not in codecs):
            raise ClipSkipped(
                f"format differs from its name (a {track.extension} holding {probe['container']}/{probe['codec']})"
            )
        return decode_with_ffmpeg(source, probe["sample_rate"], probe["channels"]), probe["sample_rate"], probe


def split_tracks(tracks: list[Track], seed: int) -> dict[str, str]:
    """Track key -> split: within each package, whole works to test and valid (by a hash of their
    names, at least two works each where there are enough), the rest to train."""
    splits = {}
    for package in sorted({track.package for track in tracks}):
        own = [track for track in tracks if track.package == package]
        sizes = defaultdict(int)
        for track in own:
            sizes[f"{package}:{track.work}"] += 1
        of_work = assign_group_splits(dict(sizes), seed)
        splits.update({track.key: of_work[f"{package}:{track.work}"] for track in own})
    return splits


def build_music(
    out_dir: str | os.PathLike,
    seconds: float = 4.0,
    max_clips_per_track: int = 20,
    min_bandwidth: int = 11_000,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    *,
    packages: list[str] | None = None,
    games_root: str | os.PathLike = GAMES_ROOT,
    doc_root: str | os.PathLike = DOC_ROOT,
    sample_rate: int = 44_100,
    overwrite: bool = False,
) -> BuildReport:
    """Clips of the installed game music into `out_dir` (wavs/, manifest.jsonl, info.json,
    balance.png); `packages` picks some of `COLLECTIONS` by package name. Same packages, same clips."""
    known = [collection.package for collection in COLLECTIONS]
    if packages is not None and (not packages or set(packages) - set(known)):
        raise ValueError(f"packages={packages}: choose from {known}")
    if seconds <= 0 or max_clips_per_track < 1 or min_bandwidth < 0:
        raise ValueError(
            f"need seconds > 0 ({seconds}), max_clips_per_track >= 1 ({max_clips_per_track}), min_bandwidth >= 0"
        )
    chosen = [collection for collection in COLLECTIONS if packages is None or collection.package in packages]
    root, doc_root = Path(games_root), Path(doc_root)
    missing = {
        collection.package: str(root / collection.folder)
        for collection in chosen
        if not (root / collection.folder).exists()
    }
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        missing["ffmpeg"] = "ffmpeg and ffprobe on PATH"
    require_packages(missing, extra=", or leave a package out with --packages")
    started = time.perf_counter()
    out_dir = prepare_out_dir(out_dir, overwrite)
    tracks = [track for collection in chosen for track in collection.tracks(root, doc_root)]
    report = BuildReport("music", out_dir, out_dir / "manifest.jsonl")
    cutter = _Cutter(out_dir, seconds, max_clips_per_track, min_bandwidth, sample_rate)
    measured = parallel_map(cutter.measure, tracks, workers, progress, "music: measuring", total=len(tracks))
    facts = {track.key: fact for track, fact in zip(tracks, measured)}
    usable = [track for track in tracks if "skipped" not in facts[track.key]]
    for track in tracks:
        if "skipped" in facts[track.key]:
            width = facts[track.key].get("bandwidth_hz")
            report.skip(
                facts[track.key]["skipped"], track.original + (f" ({width} Hz wide)" if width is not None else "")
            )
    splits = split_tracks(usable, seed)  # a track left out never takes a held-out place
    for track in usable:
        facts[track.key]["split"] = splits[track.key]
    rows = []
    items = [(track, facts[track.key]) for track in usable]
    for track, result in zip(
        usable, parallel_map(cutter.cut, items, workers, progress, "music: cutting", total=len(items))
    ):
        rows.extend(result.rows)
        for reason, example in result.skips:
            report.skip(reason, example)
        facts[track.key]["clips"] = len(result.rows)
    if not rows:
        raise BuildError(f"music: no usable clip in {len(tracks)} tracks (skipped: {report.skipped})")
    report.notes["tracks used"] = sum(bool(fact.get("clips")) for fact in facts.values())
    report.notes["tracks capped (more windows than --max-clips-per-track)"] = sum(
        fact.get("clips", 0) and fact["windows"] > max_clips_per_track for fact in facts.values()
    )
    info = {
        "builder": "music",
        "args": {
            "seconds": seconds,
            "max_clips_per_track": max_clips_per_track,
            "min_bandwidth": min_bandwidth,
            "seed": seed,
            "sample_rate": sample_rate,
            "packages": packages,
            "games_root": str(root),
            "doc_root": str(doc_root),
        },  # fmt: skip
        "label": "the package's game (wesnoth, warzone2100, nexuiz)",
        "split_rule": "by work (a track and its variants), per package: whole works to test and valid by a hash of "
        "their names (about 10% of the tracks and at least two works each), the rest to train",
        "held_out": {
            split: sorted(key for key, where in splits.items() if where == split) for split in ("valid", "test")
        },
        "packages": {collection.package: package_version(collection.package) for collection in chosen},
        "tracks": facts,
        "summary": summary(rows, ("label", "album", "split")),
    }
    plot_field_balance(rows, "track", out_dir / "balance.png", f"music: {len(rows)} clips per track and split")
    return write_outputs(report, rows, info, started)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (wavs/, manifest.jsonl, info.json, balance.png)")
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length")
    parser.add_argument("--max-clips-per-track", type=int, default=20, help="so that long tracks do not dominate")
    parser.add_argument(
        "--min-bandwidth", type=int, default=11_000, help="Hz; a track with nothing above is left out (0 keeps all)"
    )
    parser.add_argument(
        "--packages", help=f"comma-separated (default: all): {','.join(c.package for c in COLLECTIONS)}"
    )
    parser.add_argument("--games-root", default=str(GAMES_ROOT))
    parser.add_argument("--doc-root", default=str(DOC_ROOT), help="where the packages' copyright files are")
    parser.add_argument("--seed", type=int, default=0, help="the hash that picks held-out works")
    parser.add_argument("--workers", type=int, help="parallel decoders (default: one per CPU)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing build in --out")


def run(args: argparse.Namespace) -> int:
    packages = [name.strip() for name in (args.packages or "").split(",") if name.strip()] or None
    report = build_music(
        args.out, args.seconds, args.max_clips_per_track, args.min_bandwidth, args.seed, args.workers,
        packages=packages, games_root=args.games_root, doc_root=args.doc_root, overwrite=args.overwrite,
    )  # fmt: skip
    info = json.loads((report.out_dir / "info.json").read_text(encoding="utf-8"))
    print(report)
    print(info["summary"])
    for key, fact in info["tracks"].items():
        state = f"{fact['clips']} clips" if fact.get("clips") else f"skipped: {fact.get('skipped', 'no clip')}"
        figures = (
            f"{fact['rate']} Hz x{fact['channels']} {fact['seconds']:.0f} s, {fact['bandwidth_hz'] / 1000:.1f} kHz wide"
            if "rate" in fact
            else ""
        )
        print(f"  {key:<48} {fact.get('split', '-'):<5} {state:<40} {figures}")
    print(f"picture: {report.out_dir / 'balance.png'}")
    return 0
