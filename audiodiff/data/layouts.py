"""Known dataset layouts, as a registry: each reader turns a folder into `AudioItem`s (label,
text, numbers, split) without opening the audio; `scan_items` checks the files afterwards.

    folder           any folder of audio; labels from parent folders if asked; sidecar .txt captions
    manifest         a .jsonl/.csv manifest, or a folder holding manifest.jsonl / manifest.csv
    shards           tar shards written by `audiodiff data shard` (index.json)
    ljspeech         metadata.csv (id|text|normalized text) + wavs/ID.wav; text = normalized text
    nsynth           examples.json + audio/NAME.wav (or nsynth-{train,valid,test}/ below the path);
                     label = instrument family, numbers pitch and velocity, text from the note's facts
    speech_commands  a folder per word; validation_list.txt / testing_list.txt give the valid and
                     test splits, the rest is train; _background_noise_ is left out
    sc09             the ten digit words of Speech Commands, or WaveGAN's sc09/{train,valid,test}/Word_*.wav

`data.layout: auto` picks the first layout in that order (folder last) whose files are present.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from audiodiff.audio import AUDIO_EXTENSIONS
from audiodiff.config import DataConfig
from audiodiff.data.items import AudioItem, DatasetError, ScanReport
from audiodiff.data.manifest import items_from_manifest
from audiodiff.data.shards import is_shard_folder, read_shard_items

__all__ = ["DIGIT_WORDS", "LAYOUTS", "Layout", "manifest_file", "resolve_layout"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MANIFEST_NAMES = ("manifest.jsonl", "manifest.csv")
SPLIT_SUFFIXES = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}


@dataclasses.dataclass(frozen=True)
class Layout:
    name: str
    detect: Callable[[Path], bool]  # does `path` look like this layout?
    read: Callable[[Path, DataConfig, ScanReport], list[AudioItem]]
    checked: bool = False  # True: the files were checked when the layout was written


LAYOUTS: dict[str, Layout] = {}  # in auto-detection order


def layout(name: str, detect: Callable[[Path], bool], checked: bool = False):
    """Register a reader `read(path, cfg, report) -> items` under `name`."""

    def register(read):
        LAYOUTS[name] = Layout(name, detect, read, checked)
        return read

    return register


def resolve_layout(name: str, path: Path) -> Layout:
    """The layout called `name`, or for "auto" the first whose files are at `path`."""
    if name == "auto":
        found = next((candidate for candidate in LAYOUTS.values() if candidate.detect(path)), None)
        if found is None:
            raise DatasetError(f"{path}: not a folder, a .jsonl/.csv manifest or a shard folder; fix data.path")
        return found
    if name not in LAYOUTS:
        raise DatasetError(f"data.layout={name!r} is not a known layout; valid layouts are {['auto', *LAYOUTS]}")
    return LAYOUTS[name]


def _need_folder(path: Path, layout_name: str, *files: str) -> None:
    if not path.is_dir():
        raise DatasetError(f"{path}: the {layout_name} layout needs a folder")
    missing = [name for name in files if not (path / name).exists()]
    if missing:
        raise DatasetError(
            f"{path}: no {' or '.join(missing)}, so it is not a {layout_name} folder; set data.layout=auto or fix data.path"
        )


def _audio_files(folder: Path) -> list[Path]:
    """Audio files under `folder` (sorted), leaving out hidden files and folders."""
    return [
        file
        for file in sorted(folder.rglob("*"))
        if file.suffix.lower() in AUDIO_EXTENSIONS
        and not any(part.startswith(".") for part in file.relative_to(folder).parts)
        and file.is_file()
    ]


def _split_of(folder_name: str) -> str | None:
    """`nsynth-valid` -> "valid"; None where the name states no split."""
    return SPLIT_SUFFIXES.get(folder_name.rsplit("-", 1)[-1].lower())


# --------------------------------------------------------------------------------------------
# The registry, in auto-detection order.


layout("shards", is_shard_folder, checked=True)(read_shard_items)


def manifest_file(path: Path) -> Path | None:
    """`path` if it is a .jsonl/.csv manifest, else the manifest a folder at `path` holds, if any."""
    if path.is_file() and path.suffix.lower() in (".jsonl", ".csv"):
        return path
    return next((path / name for name in MANIFEST_NAMES if (path / name).is_file()), None) if path.is_dir() else None


@layout("manifest", lambda path: manifest_file(path) is not None)
def read_manifest(path: Path, cfg: DataConfig, report: ScanReport) -> list[AudioItem]:
    manifest = manifest_file(path)
    if manifest is None:
        raise DatasetError(f"{path}: not a .jsonl/.csv manifest, nor a folder holding {' or '.join(MANIFEST_NAMES)}")
    return items_from_manifest(manifest, cfg, report)


@layout("ljspeech", lambda path: (path / "metadata.csv").is_file() and (path / "wavs").is_dir())
def read_ljspeech(path: Path, cfg: DataConfig, report: ScanReport) -> list[AudioItem]:
    _need_folder(path, "ljspeech", "metadata.csv", "wavs")
    items = []
    with (path / "metadata.csv").open(encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").split("|")
            if not line.strip():
                continue
            if len(fields) < 2 or not fields[0].strip():
                report.skip("malformed metadata.csv line", f"metadata.csv:{line_no}")
                continue
            if not _plain_name(fields[0].strip()):
                report.skip(OUTSIDE, f"metadata.csv:{line_no} {fields[0].strip()[:80]}")
                continue
            text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
            items.append(AudioItem(path / "wavs" / f"{fields[0].strip()}.wav", text=text.strip() or None))
    return items


OUTSIDE = "file name that leaves the dataset folder"


def _plain_name(name: str) -> bool:
    """A file name a layout may join to its folder: no separators, no '..', not absolute, no NUL."""
    return bool(name) and not any(c in name for c in "/\\\0") and name not in (".", "..")


def _nsynth_folders(path: Path) -> list[Path]:
    if (path / "examples.json").is_file():
        return [path]
    return (
        sorted(child for child in path.glob("nsynth-*") if (child / "examples.json").is_file()) if path.is_dir() else []
    )


def nsynth_caption(note: dict) -> str:
    """ "an electronic bass note, C#3, played loud, bright and distorted" from an examples.json entry."""
    from audiodiff.data.builders.notes import note_name

    source = note.get("instrument_source_str", "")
    article = "an" if (source or note["instrument_family_str"])[:1] in "aeiou" else "a"
    family = note["instrument_family_str"].replace("_", " ")
    velocity = int(note["velocity"])
    dynamic = "soft" if velocity < 60 else "loud" if velocity >= 100 else "medium"
    words = [f"{article} {source} {family} note".replace("  ", " "), note_name(int(note["pitch"])), f"played {dynamic}"]
    qualities = [quality.replace("_", " ") for quality in note.get("qualities_str", [])]
    return ", ".join(words + qualities)


@layout("nsynth", lambda path: bool(_nsynth_folders(path)))
def read_nsynth(path: Path, cfg: DataConfig, report: ScanReport) -> list[AudioItem]:
    folders = _nsynth_folders(path)
    if not folders:
        raise DatasetError(f"{path}: no examples.json here or in nsynth-*/ below; it is not an NSynth folder")
    items = []
    for folder in folders:
        try:
            examples = json.loads((folder / "examples.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DatasetError(
                f"{folder / 'examples.json'}: not valid JSON ({error}); re-download or re-extract it"
            ) from None
        if not isinstance(examples, dict):
            raise DatasetError(f"{folder / 'examples.json'}: expected an object of notes by name")
        split = _split_of(folder.name)
        for name, note in sorted(examples.items()):
            if not _plain_name(name):
                report.skip(OUTSIDE, f"{folder.name}/examples.json:{name[:80]}")
                continue
            try:
                label = str(note["instrument_family_str"])
                numbers = {"pitch": float(note["pitch"]), "velocity": float(note["velocity"])}
                text = nsynth_caption(note)
            except (KeyError, TypeError, ValueError):
                report.skip("malformed examples.json entry", f"{folder.name}/examples.json:{name}")
                continue
            items.append(
                AudioItem(folder / "audio" / f"{name}.wav", label=label, text=text, numbers=numbers, split=split)
            )
    return items


def _is_wavegan_sc09(path: Path) -> bool:
    train = path / "train"
    if not train.is_dir():
        return False
    first = next((file for file in sorted(train.iterdir()) if file.suffix.lower() == ".wav"), None)
    return first is not None and first.name.split("_", 1)[0].lower() in DIGIT_WORDS


def _is_speech_commands(path: Path) -> bool:
    return any((path / name).exists() for name in ("validation_list.txt", "testing_list.txt", "_background_noise_"))


@layout("sc09", _is_wavegan_sc09)
def read_sc09(path: Path, cfg: DataConfig, report: ScanReport) -> list[AudioItem]:
    if not _is_wavegan_sc09(path):
        return [item for item in read_speech_commands(path, cfg, report) if item.label in DIGIT_WORDS]
    items = []
    for split_folder in ("train", "valid", "test"):
        folder = path / split_folder
        for file in _audio_files(folder) if folder.is_dir() else []:
            label = file.name.split("_", 1)[0].lower()
            if label not in DIGIT_WORDS:
                report.skip("file name does not start with a digit word", str(file))
                continue
            items.append(AudioItem(file, label=label, split=split_folder))
    return items


def _list_file(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()}


@layout("speech_commands", _is_speech_commands)
def read_speech_commands(path: Path, cfg: DataConfig, report: ScanReport) -> list[AudioItem]:
    if not path.is_dir():
        raise DatasetError(f"{path}: the speech_commands layout needs the dataset's folder")
    valid, test = _list_file(path / "validation_list.txt"), _list_file(path / "testing_list.txt")
    items = []
    for word in sorted(child for child in path.iterdir() if child.is_dir()):
        if word.name.startswith(("_", ".")):  # _background_noise_: long noise recordings, no word
            continue
        for file in _audio_files(word):
            name = file.relative_to(path).as_posix()
            split = "valid" if name in valid else "test" if name in test else "train"
            items.append(AudioItem(file, label=word.name, split=split))
    return items


@layout("folder", lambda path: path.is_dir())
def read_folder(path: Path, cfg: DataConfig, report: ScanReport) -> list[AudioItem]:
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder")
    items = []
    for file in _audio_files(path):
        label = file.parent.name if cfg.label_from_folder and file.parent != path else None
        caption = file.with_suffix(".txt")
        text = caption.read_text(encoding="utf-8", errors="replace").strip() if caption.is_file() else None
        items.append(AudioItem(file, label=label, text=text or None))
    return items
