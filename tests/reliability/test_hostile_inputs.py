"""Hostile audio files and manifests, fuzzed with hypothesis: random bytes, truncated and forged
headers (huge declared lengths, absurd sample rates and channel counts), NaN samples, malformed
manifest rows, paths that leave the dataset folder. Every case is a clean AudioError /
DatasetError or a counted skip, never a crash of the scan, a hang or a file read outside the
dataset folder."""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiodiff.audio import AudioError, load_audio
from audiodiff.config import DataConfig
from audiodiff.data.dataset import scan_items
from audiodiff.data.items import DatasetError
from tests.reliability.helpers import record

FUZZ = settings(
    max_examples=int(os.environ.get("AUDIODIFF_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SUFFIXES = [".wav", ".flac", ".ogg", ".mp3", ".aiff"]
COUNTS: dict[str, dict[str, int]] = {}


def count(test: str, outcome: str) -> None:
    COUNTS.setdefault(test, {}).setdefault(outcome, 0)
    COUNTS[test][outcome] += 1


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    for test, outcomes in COUNTS.items():
        record("fuzz", case=test, trials=sum(outcomes.values()), **outcomes)


def valid_wav(seconds: float = 0.05, rate: int = 16000, channels: int = 1, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    audio = 0.3 * np.sin(np.linspace(0, 200, int(rate * seconds)))[:, None].repeat(channels, 1)
    soundfile.write(buffer, audio, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def try_load(path: Path, test: str) -> None:
    """load_audio either gives finite audio in [-1, 1] or raises AudioError naming the file."""
    try:
        audio, rate = load_audio(path, sample_rate=16000, channels=1)
    except AudioError as error:
        assert str(path) in str(error)
        count(test, "refused")
        return
    assert audio.dim() == 2 and audio.shape[0] == 1 and rate == 16000
    assert bool(np.isfinite(audio.numpy()).all())
    count(test, "loaded")


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    try_load(path, "random bytes as audio")


@FUZZ
@given(cut=st.integers(0, 1200), suffix=st.sampled_from([".wav", ".flac"]))
def test_truncated_files(tmp_path, cut, suffix):
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((800, 1)), 16000, format=suffix[1:].upper())
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(buffer.getvalue()[:cut])
    try_load(path, "truncated wav/flac")


# WAV header fields: (offset, struct format)
FIELDS = {
    "riff_size": (4, "<I"),
    "channels": (22, "<H"),
    "sample_rate": (24, "<I"),
    "byte_rate": (28, "<I"),
    "block_align": (32, "<H"),
    "bits": (34, "<H"),
    "data_size": (40, "<I"),
}
EXTREMES = st.sampled_from([0, 1, 3, 7, 255, 65535, 2**31 - 1, 2**32 - 1, 10**9, 768_001])


@FUZZ
@given(field=st.sampled_from(sorted(FIELDS)), value=st.one_of(EXTREMES, st.integers(0, 2**32 - 1)))
def test_forged_wav_headers(tmp_path, field, value):
    """Huge declared lengths, absurd sample rates and channel counts, broken block sizes."""
    data = bytearray(valid_wav())
    offset, fmt = FIELDS[field]
    data[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value % (256 ** struct.calcsize(fmt)))
    path = tmp_path / "forged.wav"
    path.write_bytes(bytes(data))
    try_load(path, "forged wav header fields")


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 999), st.integers(0, 255)), min_size=1, max_size=16))
def test_flipped_bytes(tmp_path, flips):
    data = bytearray(valid_wav())
    for position, value in flips:
        data[position % len(data)] = value
    path = tmp_path / "flipped.wav"
    path.write_bytes(bytes(data))
    try_load(path, "random byte changes in a wav")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused(tmp_path, bad):
    audio = np.zeros((1600, 1), dtype=np.float32)
    audio[100] = bad
    soundfile.write(tmp_path / "nan.wav", audio, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        load_audio(tmp_path / "nan.wav")
    count("NaN/Inf samples", "refused")


def test_a_scan_skips_and_counts_every_hostile_file_and_keeps_the_good_ones(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    hostile = {
        "random.wav": rng.bytes(3000),
        "empty.wav": b"",
        "truncated.wav": valid_wav()[:30],
        "zero_rate.wav": valid_wav()[:24] + struct.pack("<I", 0) + valid_wav()[28:],
        "text.mp3": b"<html>not audio</html>",
    }
    for name, data in hostile.items():
        (folder / name).write_bytes(data)
    nan = np.zeros((1600, 1), dtype=np.float32)
    nan[5] = np.nan
    soundfile.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    for index in range(3):
        (folder / f"good{index}.wav").write_bytes(valid_wav(0.3))
    # a data chunk that declares 4 GB: read as the samples the file really holds
    (folder / "good_but_huge_declared_length.wav").write_bytes(
        valid_wav(0.3)[:40] + struct.pack("<I", 2**32 - 1) + valid_wav(0.3)[44:]
    )
    items, report = scan_items(DataConfig(path=str(folder), split=None), progress=False)
    assert sorted(item.path.name for item in items) == [
        "good0.wav",
        "good1.wav",
        "good2.wav",
        "good_but_huge_declared_length.wav",
    ]
    skipped = sum(report.skipped.values())
    assert skipped >= len(hostile)  # each hostile file skipped and counted with a reason
    record(
        "fuzz",
        case="dataset scan of a folder with 6 hostile and 4 good files",
        trials=1,
        kept=len(items),
        skipped=skipped,
    )


# --------------------------------------------------------------------------------------------
# Manifests and layouts

NAMES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "../outside.wav",
            "../../etc/passwd",
            "a/../../outside.wav",
            "./../outside.wav",
            "..",
            ".",
            "",
            "sub/../good0.wav",
            "good0.wav",
            "\x00.wav",
            "a" * 5000,
            "good0.wav\n",
        ]
    ),
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
ROWS = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"path": NAMES}, optional={"label": VALUES, "text": VALUES, "split": VALUES, "pitch": VALUES}
        ),
        st.dictionaries(st.text(max_size=8), VALUES, max_size=4),
        VALUES,
    ),
    max_size=12,
)


def manifest_folder(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "good0.wav").write_bytes(valid_wav(0.3))
    (tmp_path / "outside.wav").write_bytes(valid_wav(0.3))  # what an escaping path would reach
    return root


def check_scan(root: Path, manifest: Path, test: str) -> None:
    cfg = DataConfig(path=str(manifest), split=None, number_fields=["pitch"])
    try:
        items, _ = scan_items(cfg, progress=False)
    except DatasetError as error:
        assert str(root) in str(error) or manifest.name in str(error)
        count(test, "refused (nothing usable)")
        return
    for item in items:  # relative names never leave the manifest's folder
        assert Path(os.path.realpath(item.path)).is_relative_to(os.path.realpath(root)), item.path
    count(test, f"kept {min(len(items), 2)}+" if len(items) >= 2 else f"kept {len(items)}")


@FUZZ
@given(rows=ROWS, junk=st.lists(st.text(max_size=30), max_size=3))
def test_fuzzed_jsonl_manifests(tmp_path, rows, junk):
    root = manifest_folder(tmp_path)
    lines = [json.dumps(row, allow_nan=True) for row in rows] + junk
    (root / "manifest.jsonl").write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    check_scan(root, root / "manifest.jsonl", "fuzzed JSONL manifest")


@FUZZ
@given(
    cells=st.lists(st.lists(st.one_of(NAMES, st.text(max_size=10)), max_size=5), max_size=10),
    header=st.sampled_from(["path,label,text", "path", "label,text", "path,label,pitch,split", ""]),
)
def test_fuzzed_csv_manifests(tmp_path, cells, header):
    root = manifest_folder(tmp_path)
    import csv

    with open(root / "manifest.csv", "w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
        if header:
            handle.write(header + "\n")
        csv.writer(handle).writerows(cells)
    check_scan(root, root / "manifest.csv", "fuzzed CSV manifest")


@FUZZ
@given(ids=st.lists(NAMES, max_size=8), texts=st.lists(st.text(max_size=20), max_size=8))
def test_fuzzed_ljspeech_metadata(tmp_path, ids, texts):
    root = tmp_path / "LJSpeech"
    (root / "wavs").mkdir(parents=True, exist_ok=True)
    (root / "wavs" / "good0.wav").write_bytes(valid_wav(0.3))
    (tmp_path / "outside.wav").write_bytes(valid_wav(0.3))
    lines = ["good0|hello|hello"] + [f"{i}|{t}|{t}" for i, t in zip(ids, texts + [""] * len(ids))]
    (root / "metadata.csv").write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    check_scan(root, root, "fuzzed LJSpeech metadata.csv")


@FUZZ
@given(
    notes=st.dictionaries(
        NAMES,
        st.one_of(
            VALUES, st.fixed_dictionaries({"instrument_family_str": VALUES, "pitch": VALUES, "velocity": VALUES})
        ),
        max_size=6,
    )
)
def test_fuzzed_nsynth_examples(tmp_path, notes):
    root = tmp_path / "nsynth-test"
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "audio" / "good0.wav").write_bytes(valid_wav(0.3))
    (tmp_path / "outside.wav").write_bytes(valid_wav(0.3))
    notes = dict(notes, good0={"instrument_family_str": "bass", "pitch": 60, "velocity": 100})
    (root / "examples.json").write_text(json.dumps(notes), encoding="utf-8", errors="surrogatepass")
    check_scan(root, root, "fuzzed NSynth examples.json")


@FUZZ
@given(
    index=st.one_of(
        VALUES,
        st.fixed_dictionaries(
            {
                "format": st.just("audiodiff-shards"),
                "version": st.integers(0, 2),
                "shards": st.lists(st.one_of(VALUES, st.fixed_dictionaries({"name": NAMES})), max_size=3),
                "items": st.lists(
                    st.one_of(VALUES, st.fixed_dictionaries({"shard": VALUES, "member": VALUES})), max_size=4
                ),
            }
        ),
    )
)
def test_fuzzed_shard_index(tmp_path, index):
    from audiodiff.data.items import ScanReport
    from audiodiff.data.shards import INDEX, read_shard_items

    root = tmp_path / "shards"
    root.mkdir(exist_ok=True)
    (root / INDEX).write_text(json.dumps(index))
    try:
        items = read_shard_items(root, DataConfig(path=str(root)), ScanReport(str(root)))
    except DatasetError:
        count("fuzzed shard index", "refused")
        return
    for item in items:
        assert Path(os.path.realpath(item.path)).is_relative_to(os.path.realpath(root))
    count("fuzzed shard index", "read")
