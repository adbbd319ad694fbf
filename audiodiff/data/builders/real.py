"""What the builders of real recordings from Debian packages share (drums; voices and music may
reuse it): the package's version and licence, reading a file as recorded (every channel, its
format checked against its name), resampling that keeps the channels, trimming and capping,
measured descriptors, soundfonts read and rendered note by note, recordings shared between
sources, splits by group, and the summary (text and a bar chart).

Audio here is float32 `[channels, samples]` unless a docstring says otherwise.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import os
import re
import struct
import subprocess
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile

from audiodiff.data.builders.common import MissingToolError, resample_mono, stable_fraction

__all__ = [
    "ClipSkipped", "Recording", "Soundfont", "assign_group_splits", "cap_length", "clipped_share", "debian_licence",
    "describe", "fold_pan", "group_shared", "hits_midi", "package_version", "plot_class_balance", "read_recording",
    "read_soundfont", "render_midi",
    "require_packages", "resample_channels", "signature", "sound_bounds", "summary", "write_wav",
]  # fmt: skip

DOC_ROOT = "/usr/share/doc"
# what soundfile must report for a file of each extension ("a .wav that is really FLAC" is skipped)
EXTENSION_FORMATS = {
    ".wav": {"WAV", "WAVEX", "RF64"}, ".wave": {"WAV", "WAVEX", "RF64"}, ".flac": {"FLAC"},
    ".aif": {"AIFF"}, ".aiff": {"AIFF"}, ".ogg": {"OGG"}, ".oga": {"OGG"}, ".mp3": {"MP3"},
}  # fmt: skip
SILENT_PEAK = 1e-4  # -80 dBFS: a recording whose peak stays below is silent
FULL_SCALE = 0.99  # a sample at or above this magnitude counts as clipped


class ClipSkipped(Exception):
    """One source clip cannot be used; `str(error)` is the reason the report counts it under."""


def require_packages(missing: dict[str, str], extra: str = "") -> None:
    """One line naming the packages not installed ({package: what was looked for}) and the
    command that installs them, as a MissingToolError; nothing when `missing` is empty."""
    if missing:
        names = " ".join(missing)
        where = "; ".join(f"{where} not found" for where in missing.values())
        raise MissingToolError(
            f"{', '.join(missing)} not installed ({where}); install with `sudo apt-get install {names}` "
            f"or `bash scripts/setup.sh`{extra}"
        )


def package_version(package: str) -> str:
    """The installed Debian version of `package` (dpkg-query), or "unknown"."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def _dep5_stanzas(text: str) -> list[dict[str, str]]:
    """Paragraphs of a machine-readable debian/copyright as {field: value} (continuations joined)."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        stanzas.append(fields)
    return stanzas


def debian_licence(package: str, upstream_path: str, doc_root: str | os.PathLike = DOC_ROOT) -> str:
    """The short licence name that `doc_root/package/copyright` gives `upstream_path` (a path as the
    copyright file's `Files:` patterns write it, e.g. "etc/samples/bd_808.flac"): the last matching
    stanza wins, as DEP-5 says. Falls back to a pointer at the file when it is missing or not DEP-5."""
    path = Path(doc_root) / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"unknown (no {path})"
    licence = None
    for stanza in _dep5_stanzas(text):
        patterns = stanza.get("files", "").split()
        if "license" in stanza and any(fnmatch.fnmatchcase(upstream_path, pattern) for pattern in patterns):
            licence = stanza["license"].splitlines()[0].strip()
    return licence or f"see {path}"


# --------------------------------------------------------------------------------------------
# Audio


@dataclasses.dataclass
class Recording:
    """A decoded file: `audio` `[channels, samples]`, its rate and its soundfile subtype (e.g. PCM_24)."""

    audio: np.ndarray
    sample_rate: int
    subtype: str

    @property
    def channels(self) -> int:
        return self.audio.shape[0]


def read_recording(path: str | os.PathLike) -> Recording:
    """Decode every channel of `path`; ClipSkipped when it is missing, unreadable, or in a
    different format than its extension names."""
    path = Path(path)
    if not path.is_file():
        raise ClipSkipped("missing sample file")
    try:
        info = soundfile.info(str(path))
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError):  # soundfile.LibsndfileError is a RuntimeError
        raise ClipSkipped("unreadable audio") from None
    expected = EXTENSION_FORMATS.get(path.suffix.lower())
    if expected is not None and info.format not in expected:
        raise ClipSkipped(f"format differs from its name (a {path.suffix.lower()} holding {info.format})")
    if audio.shape[0] == 0:
        raise ClipSkipped("empty audio")
    return Recording(np.ascontiguousarray(audio.T), int(rate), info.subtype)


def resample_channels(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of each channel of `[channels, samples]` (once; channels kept)."""
    if orig_rate == new_rate:
        return audio
    return np.stack([resample_mono(channel, orig_rate, new_rate) for channel in audio])


def fold_pan(stereo: np.ndarray) -> np.ndarray:
    """`[2, samples]` of one mono source panned by a synthesiser -> `[1, samples]` at the source's
    level: with L = c x and R = s x (a constant-power pan, c^2 + s^2 = 1, as fluidsynth's), c L + s R
    = x, with c and s estimated from the two channels' energies."""
    left, right = float(np.sqrt(np.mean(stereo[0] ** 2))), float(np.sqrt(np.mean(stereo[1] ** 2)))
    norm = math.hypot(left, right)
    if norm == 0.0:
        return stereo[:1] * 0.0
    c, s = left / norm, right / norm
    return (c * stereo[0] + s * stereo[1])[None].astype(np.float32)


def sound_bounds(audio: np.ndarray, threshold_db: float = -60.0) -> tuple[int, int] | None:
    """(first, last + 1) sample where any channel is within `threshold_db` of the peak; None when silent."""
    level = np.abs(audio).max(axis=0)
    peak = float(level.max()) if level.size else 0.0
    if peak < SILENT_PEAK:
        return None
    loud = np.flatnonzero(level >= peak * 10 ** (threshold_db / 20))
    return int(loud[0]), int(loud[-1]) + 1


def clipped_share(audio: np.ndarray) -> float:
    """Share of the samples (any channel) at full scale: a recording clipped for most of its length
    is mostly that."""
    return float(np.mean(np.abs(audio).max(axis=0) >= FULL_SCALE)) if audio.size else 0.0


def cap_length(audio: np.ndarray, max_samples: int, fade_samples: int) -> tuple[np.ndarray, bool]:
    """The first `max_samples` with a linear fade-out of `fade_samples` (if longer), and whether it was cut."""
    if audio.shape[-1] <= max_samples:
        return audio, False
    out = np.array(audio[:, :max_samples], dtype=np.float32)
    out[:, -fade_samples:] *= np.linspace(1.0, 0.0, fade_samples, dtype=np.float32)
    return out, True


def describe(audio: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Numbers a model can condition on, measured on `[channels, samples]`:
    `peak_db` (dBFS of the largest sample), `decay` (seconds from the loudest moment to the last
    moment within 40 dB of it, on a 20 ms power envelope), `centroid` (Hz, of the magnitude
    spectrum summed over the clip's frames and channels) and `brightness` (the centroid on a log
    scale, 0 at 20 Hz and 1 at 20 kHz)."""
    peak = float(np.abs(audio).max())
    power = np.mean(audio.astype(np.float64) ** 2, axis=0)
    window = max(1, int(0.02 * sample_rate))
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    half = window // 2
    starts = np.clip(np.arange(power.size) - half, 0, power.size)
    ends = np.clip(np.arange(power.size) + window - half, 0, power.size)
    envelope = (cumulative[ends] - cumulative[starts]) / np.maximum(ends - starts, 1)
    loudest = int(np.argmax(envelope))
    above = np.flatnonzero(envelope >= envelope[loudest] * 1e-4)  # -40 dB in power
    decay = (int(above[-1]) - loudest) / sample_rate
    n_fft, hop = 2048, 512
    padded = np.pad(audio, ((0, 0), (0, max(0, n_fft - audio.shape[-1]) + hop)))
    count = 1 + (padded.shape[-1] - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, : count * hop : hop]
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)).sum(axis=(0, 1))
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    centroid = float((freqs * magnitude).sum() / max(magnitude.sum(), 1e-12))
    brightness = float(np.clip(math.log(max(centroid, 20.0) / 20.0) / math.log(1000.0), 0.0, 1.0))
    return {
        "peak_db": round(20 * math.log10(max(peak, 1e-10)), 2),
        "decay": round(decay, 4),
        "centroid": round(centroid, 1),
        "brightness": round(brightness, 4),
    }


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write `[channels, samples]` as a PCM wav (clipped to [-1, 1])."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.clip(audio, -1.0, 1.0).T, int(sample_rate), subtype=subtype)


# --------------------------------------------------------------------------------------------
# Soundfonts


@dataclasses.dataclass
class Soundfont:
    """What an .sf2's first preset plays: per MIDI note its sample zones as (velocity low, velocity
    high, sample name), sorted (a drum kit's velocity layers), with the samples' data `[samples]`."""

    path: Path
    bank: int
    program: int
    sample_rate: int
    notes: dict[int, list[tuple[int, int, str]]]
    samples: dict[str, np.ndarray]


def _chunks(data: bytes, offset: int, end: int):
    while offset + 8 <= end:
        name, size = struct.unpack_from("<4sI", data, offset)
        yield name, offset + 8, size
        offset += 8 + size + (size & 1)


def read_soundfont(path: Path) -> Soundfont:
    """Read a SoundFont 2 file's first preset down to its samples (a ValueError when malformed)."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise ValueError("not a SoundFont 2 file (no RIFF/sfbk header)")
    parts: dict[str, bytes] = {}
    for name, offset, size in _chunks(data, 12, len(data)):
        if name == b"LIST" and data[offset : offset + 4] in (b"pdta", b"sdta"):
            parts.update({sub.decode(): data[o : o + s] for sub, o, s in _chunks(data, offset + 4, offset + size)})

    def table(name: str, fmt: str) -> list[tuple]:
        size = struct.calcsize(fmt)
        return [struct.unpack_from(fmt, parts[name], i) for i in range(0, len(parts[name]) - size + 1, size)]

    try:
        presets, preset_bags, preset_gens = table("phdr", "<20sHHHIII"), table("pbag", "<HH"), table("pgen", "<HH")
        instruments, inst_bags, inst_gens = table("inst", "<20sH"), table("ibag", "<HH"), table("igen", "<HH")
        headers, pcm = table("shdr", "<20sIIIIIbBHH"), np.frombuffer(parts["smpl"], dtype="<i2")
    except (KeyError, struct.error) as error:
        raise ValueError(f"no or bad {error} chunk") from None

    def zones(bags, gens, first: int, last: int) -> list[dict[int, int]]:
        return [dict(gens[bags[b][0] : bags[b + 1][0]]) for b in range(first, last)]

    def span(gens: dict[int, int], op: int) -> range:
        value = gens.get(op, 0x7F00)
        return range(value & 0xFF, (value >> 8) + 1)

    if len(presets) < 2:
        raise ValueError("no preset")
    _, program, bank, first_bag = presets[0][:4]
    notes: dict[int, list[tuple[int, int, str]]] = {}
    samples, rates = {}, Counter()
    for preset_zone in zones(preset_bags, preset_gens, first_bag, presets[1][3]):
        if 41 not in preset_zone:
            continue
        index = preset_zone[41]
        for zone in zones(inst_bags, inst_gens, instruments[index][1], instruments[index + 1][1]):
            if 53 not in zone:
                continue
            name, start, end, _, _, rate = headers[zone[53]][:6]
            name = name.split(b"\0")[0].decode("latin-1")
            samples[name], rates[rate] = pcm[start:end].astype(np.float32) / 32768, rates[rate] + 1
            velocities = span(zone, 44)
            for note in set(span(preset_zone, 43)) & set(span(zone, 43)):
                notes.setdefault(note, []).append((velocities.start, velocities.stop - 1, name))
    if not notes:
        raise ValueError("its first preset plays no sample")
    return Soundfont(
        path, bank, program, rates.most_common(1)[0][0], {n: sorted(z) for n, z in sorted(notes.items())}, samples
    )


def _varlen(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    while value > 0x7F:
        value >>= 7
        out.append((value & 0x7F) | 0x80)
    return bytes(reversed(out))


def hits_midi(font: Soundfont, note: int, velocities: list[int], hold_seconds: float, slot_seconds: float) -> bytes:
    """A MIDI file striking `note` once per velocity, each in its own slot of `slot_seconds`: note-on
    20 ms in, note-off after `hold_seconds` (a hit rings that long), All Sound Off 100 ms before
    the slot ends. The preset is selected as the soundfont needs: bank 128 on the percussion channel."""
    channel = 9 if font.bank == 128 else 0
    slot_ms, hold_ms = int(1000 * slot_seconds), int(1000 * hold_seconds)
    events = [(0, b"\xff\x51\x03" + (1_000_000).to_bytes(3, "big")),  # 1 tick = 1 ms
              (0, bytes([0xB0 | channel, 0, font.bank & 0x7F])), (0, bytes([0xC0 | channel, font.program]))]  # fmt: skip
    for k, velocity in enumerate(velocities):
        start = k * slot_ms + 20
        events += [(start, bytes([0x90 | channel, note, velocity])), (start + hold_ms, bytes([0x80 | channel, note, 0])),
                   ((k + 1) * slot_ms - 100, bytes([0xB0 | channel, 120, 0]))]  # fmt: skip
    events.append((len(velocities) * slot_ms, b"\xff\x2f\x00"))
    track, now = b"", 0
    for when, message in sorted(events, key=lambda event: event[0]):
        track, now = track + _varlen(when - now) + message, when
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1000) + b"MTrk" + struct.pack(">I", len(track)) + track


def render_midi(fluidsynth: str, font: Soundfont, midi: bytes) -> tuple[np.ndarray, int]:
    """fluidsynth's stereo float render `[2, samples]` of `midi` at the soundfont's own sample rate
    (no interpolation), reverb and chorus off; a RuntimeError with its message when it fails."""
    with tempfile.TemporaryDirectory(prefix="audiodiff-sf2-") as folder:
        midi_path, wav = Path(folder) / "hits.mid", Path(folder) / "hits.wav"
        midi_path.write_bytes(midi)
        command = [fluidsynth, "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-r", str(font.sample_rate),
                   "-T", "wav", "-O", "float", "-F", str(wav), str(font.path), str(midi_path)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not wav.is_file():
            raise RuntimeError((done.stderr or done.stdout).strip()[:300] or f"exit status {done.returncode}")
        audio, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio.T), int(rate)


# --------------------------------------------------------------------------------------------
# Shared recordings and splits


def signature(audio: np.ndarray, length: int = 4096) -> np.ndarray:
    """A unit vector of the mono mix's first `length` samples from its onset (10% of the peak):
    two copies of one recording (another format, another gain, another package) point the same way."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    level = np.abs(mono)
    onset = int(np.argmax(level >= 0.1 * level.max())) if level.size else 0
    out = np.zeros(length, dtype=np.float32)
    part = mono[onset : onset + length]
    out[: part.size] = part
    return out / max(float(np.linalg.norm(out)), 1e-12)


def group_shared(
    keys: list[str], signatures: list[np.ndarray], threshold: float = 0.98
) -> tuple[dict[str, str], list[tuple[str, str, int, int]]]:
    """Join the keys (e.g. kits) whose clips share a recording (signatures closer than `threshold`
    in cosine). Returns {key: group} (the group named by its sorted keys joined with "+") and the
    joins [(key, other key, clip index, other clip index)], one per pair of keys."""
    parent = {key: key for key in keys}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    joins = []
    if signatures:
        matrix = np.stack(signatures)
        similar = np.argwhere(np.triu(matrix @ matrix.T, k=1) > threshold)
        seen = set()
        for i, j in similar:
            pair = tuple(sorted((keys[i], keys[j])))
            if pair[0] != pair[1] and pair not in seen:
                seen.add(pair)
                joins.append((keys[i], keys[j], int(i), int(j)))
                parent[root(keys[i])] = root(keys[j])
    members = defaultdict(set)
    for key in parent:
        members[root(key)].add(key)
    return {key: "+".join(sorted(members[root(key)])) for key in parent}, joins


def assign_group_splits(
    sizes: dict[str, int],
    seed: int,
    held_out: tuple[tuple[str, float], ...] = (("test", 0.1), ("valid", 0.1)),
    min_groups: int = 2,
) -> dict[str, str]:
    """Whole groups to splits: in the order of a hash of each group's name, each held-out split takes
    groups until it holds its fraction of the items and `min_groups` groups, passing over a group
    that would take it past twice its fraction; one that took none takes the smallest group left
    (while another is left for train). The rest is "train"."""
    total = sum(sizes.values())
    order = sorted(sizes, key=lambda group: (stable_fraction(group, seed), group))
    split_of: dict[str, str] = {}
    for split, fraction in held_out:
        held, count = 0, 0
        for group in order:
            if group in split_of:
                continue
            if held >= fraction * total and count >= min_groups:
                break
            if held + sizes[group] > 2 * fraction * total:
                continue
            split_of[group] = split
            held, count = held + sizes[group], count + 1
        left = [group for group in order if group not in split_of]
        if count == 0 and len(left) > 1:
            split_of[min(left, key=lambda group: sizes[group])] = split
    return {group: split_of.get(group, "train") for group in sizes}


# --------------------------------------------------------------------------------------------
# Summary


def summary(rows: list[dict], fields: tuple[str, ...] = ("label", "kit", "split")) -> str:
    """Clips and minutes per value of each field, the total hours, the original rates and the stereo share."""
    seconds = sum(row["seconds"] for row in rows)
    lines = [f"{len(rows)} clips, {seconds / 3600:.3f} hours"]
    for field in fields:
        count, length = Counter(), Counter()
        for row in rows:
            count[row[field]] += 1
            length[row[field]] += row["seconds"]
        parts = ", ".join(f"{value} {count[value]} ({length[value] / 60:.1f} min)" for value in sorted(count))
        lines.append(f"  per {field}: {parts}")
    rates = Counter(row.get("original_rate") for row in rows)
    lines.append("  original rates: " + ", ".join(f"{rate} Hz x {n}" for rate, n in sorted(rates.items(), key=str)))
    stereo = sum(row["channels"] == 2 for row in rows)
    lines.append(f"  stereo: {stereo} of {len(rows)} ({100 * stereo / max(len(rows), 1):.0f}%)")
    return "\n".join(lines)


def plot_class_balance(rows: list[dict], path: Path, title: str) -> Path:
    """A PNG bar chart of clips per label, stacked by split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({row["label"] for row in rows})
    splits = [split for split in ("train", "valid", "test") if any(row["split"] == split for row in rows)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 3.6))
    bottom = np.zeros(len(labels))
    for split in splits:
        counts = np.array([sum(row["label"] == label and row["split"] == split for row in rows) for label in labels])
        ax.bar(labels, counts, bottom=bottom, label=split)
        bottom += counts
    ax.set_ylabel("clips")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Files ffmpeg decodes, bandwidth, free-form licences, bars per field (voices and music)

CONTAINER_MAGIC = ((b"RIFF", "WAV"), (b"OggS", "Ogg"), (b"fLaC", "FLAC"), (b"ID3", "MP3"), (b"FORM", "AIFF"))
# licence statements of free-form copyright files and album licence texts -> a short name
LICENCE_PHRASES = (
    (r"GNU Lesser General Public License.{0,300}?version 2.{0,120}?any later", "LGPL-2+"),
    (r"GNU General Public License.{0,200}?version 2.{0,120}?(?:any later|or later)", "GPL-2+"),
    (r"CC-BY-SA-(\d\.\d)(.{0,40}any later)?", "CC-BY-SA-{0}"),
    (r"CC-BY-(\d\.\d)", "CC-BY-{0}"),
    (r"Permission is hereby granted, free of charge, to use and distribute", "festvox (free to use, modify and distribute with the notice)"),
)  # fmt: skip


def sniff_container(head: bytes) -> str | None:
    """The container a file's first bytes announce ("WAV", "Ogg", ...), or None."""
    return next((name for magic, name in CONTAINER_MAGIC if head.startswith(magic)), None)


def _ffmpeg_tool(command: list[str], data: bytes | None) -> bytes:
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        raise ClipSkipped("unreadable audio") from None
    if done.returncode != 0:
        raise ClipSkipped("unreadable audio")
    return done.stdout


def probe_audio(source: Path | bytes) -> dict:
    """ffprobe's facts of a file (or its bytes): container (e.g. "ogg"), codec, sample_rate, channels."""
    import json

    where = "pipe:0" if isinstance(source, bytes) else str(source)
    entries = "format=format_name:stream=codec_type,codec_name,sample_rate,channels"
    out = _ffmpeg_tool(["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", where],
                       source if isinstance(source, bytes) else None)  # fmt: skip
    facts = json.loads(out or b"{}")
    streams = [stream for stream in facts.get("streams", []) if stream.get("codec_type") == "audio"]
    if not streams or not int(streams[0].get("sample_rate", 0)) or not int(streams[0].get("channels", 0)):
        raise ClipSkipped("unreadable audio")
    return {"container": facts.get("format", {}).get("format_name", "?"), "codec": streams[0].get("codec_name", "?"),
            "sample_rate": int(streams[0]["sample_rate"]), "channels": int(streams[0]["channels"])}  # fmt: skip


def decode_with_ffmpeg(
    source: Path | bytes, sample_rate: int, channels: int, input_format: str | None = None
) -> np.ndarray:
    """Decode a file (or its bytes) with ffmpeg into `[channels, samples]` at `sample_rate` (pass the
    file's own rate and channels to keep them); ClipSkipped("unreadable audio") when it fails or is empty."""
    where = "pipe:0" if isinstance(source, bytes) else str(source)
    command = ["ffmpeg", "-v", "error", "-nostdin", *(["-f", input_format] if input_format else []), "-i", where, "-vn",
               "-f", "f32le", "-acodec", "pcm_f32le", "-ar", str(sample_rate), "-ac", str(channels), "pipe:1"]  # fmt: skip
    audio = np.frombuffer(_ffmpeg_tool(command, source if isinstance(source, bytes) else None), dtype="<f4")
    if audio.size < channels or not np.isfinite(audio).all():
        raise ClipSkipped("unreadable audio")
    return np.ascontiguousarray(audio[: audio.size // channels * channels].reshape(-1, channels).T)


def effective_bandwidth(audio: np.ndarray, sample_rate: int, floor_db: float = 60.0, n_fft: int = 4096) -> int:
    """Highest frequency (Hz) whose long-term level is within `floor_db` of the loudest band of
    200-4000 Hz: a codec's low-pass, a low source rate or a dull mix shows as a low figure."""
    mono = audio.mean(axis=0)
    count = mono.size // n_fft
    if count == 0:
        return 0
    frames = mono[: count * n_fft].reshape(count, n_fft)[:: max(1, count // 2000)]
    level = 10 * np.log10((np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2).mean(axis=0) + 1e-20)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    reference = level[(freqs >= 200) & (freqs <= 4000)].max()
    return int(freqs[np.flatnonzero(level >= reference - floor_db)[-1]])


def licence_in_text(text: str) -> str | None:
    """The licences a free-form text states, in the order it states them, joined by " or "; None for none known."""
    hits = []
    for pattern, name in LICENCE_PHRASES:
        match = re.search(pattern, text, re.S | re.I)
        if match:
            later = len(match.groups()) > 1 and match.group(2)
            hits.append((match.start(), name.format(*match.groups()) + ("+" if later else "")))
    return " or ".join(dict.fromkeys(name for _, name in sorted(hits))) or None


def read_licence(package: str, upstream_path: str = "*", doc_root: str | os.PathLike = DOC_ROOT) -> str:
    """`debian_licence`, or for a free-form copyright file the licences its text states."""
    licence = debian_licence(package, upstream_path, doc_root)
    if not licence.startswith(("see ", "unknown")):
        return licence
    try:
        text = (Path(doc_root) / package / "copyright").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return licence
    return licence_in_text(text) or licence


def plot_field_balance(rows: list[dict], field: str, path: Path, title: str) -> Path:
    """A PNG of horizontal bars, one per value of `field` (e.g. many tracks), stacked by split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        counts[str(row[field])][row["split"]] += 1
    names = sorted(counts)
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.16 * len(names)))
    left = np.zeros(len(names))
    for split in ("train", "valid", "test"):
        values = np.array([counts[name][split] for name in names])
        if values.any():
            ax.barh(names, values, left=left, label=split)
            left += values
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7 if len(names) > 30 else 9)
    ax.set_xlabel("clips")
    ax.set_title(title, fontsize=9)
    ax.margins(y=0.005)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")  # long names stay whole
    plt.close(fig)
    return path


__all__ += [
    "decode_with_ffmpeg", "effective_bandwidth", "licence_in_text", "plot_field_balance", "probe_audio", "read_licence",
    "sniff_container",
]  # fmt: skip
