"""Real speech from Debian packages, with festival's synthetic voices beside it, marked apart.

- Asterisk's core prompts, studio recordings by professional speakers (raw G.722, 16 kHz):
  Allison (American English and Mexican Spanish: one speaker), June (Canadian French), Carlo
  (Italian) and the IvrvoiceRU speaker (Russian).
- The sentences festvox-ru's Russian voice was built from: recordings of its speaker (16 kHz).
- festival's voices reading phrases drawn from a word list of their language: American English
  (kal, ked), Italian (pc, lp), Finnish (suopuhe lj, mv) by diphone synthesis, Russian (msu nsh,
  the speaker of the recordings above) by unit selection.

A row's `kind` says which (recorded, diphone, unit-selection); its `label` is the speaker id.
Each clip: decode -> mono at 16 kHz -> silence trimmed -> cut at the quietest pause into pieces
of at most `max_seconds` (10 ms fades at the edges) -> peak 0.95. Splits are by speaker: the
speakers of `TEST_SPEAKERS` and `VALID_SPEAKERS` are never trained on.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from audiodiff.data.builders.common import (
    BuildError,
    BuildReport,
    parallel_map,
    prepare_out_dir,
    speech_bounds,
    write_outputs,
)
from audiodiff.data.builders.real import (
    ClipSkipped,
    Recording,
    clipped_share,
    decode_with_ffmpeg,
    effective_bandwidth,
    package_version,
    plot_class_balance,
    read_licence,
    read_recording,
    require_packages,
    resample_channels,
    sniff_container,
    summary,
    write_wav,
)

__all__ = ["TEST_SPEAKERS", "VALID_SPEAKERS", "VOICES", "add_arguments", "build_voices", "run"]

ASTERISK_ROOT, FESTIVAL_ROOT = Path("/usr/share/asterisk/sounds"), Path("/usr/share/festival/voices")
DOC_ROOT = Path("/usr/share/doc")
TEST_SPEAKERS = ("ivrvoice_ru", "kal")  # one recorded speaker (of a language heard in train) and one festival voice
VALID_SPEAKERS = ("carlo", "ifm_lp")
LANGUAGES = {"en-US": "American English", "es-MX": "Mexican Spanish", "fr-CA": "Canadian French",
             "it-IT": "Italian", "ru-RU": "Russian", "fi-FI": "Finnish"}  # fmt: skip
SILENT_PEAK = 10 ** (-50 / 20)  # a source whose peak stays below -50 dBFS is silent
# Asterisk prompts that are tones or noises, not speech (their transcripts say "[beep]" and the like)
NON_SPEECH = {
    "beep",
    "beeperr",
    "ascending-2tone",
    "descending-2tone",
    "confbridge-join",
    "confbridge-leave",
    "tt-monkeys",
}
KINDS = {"recorded": "recorded", "diphone": "diphone synthesis", "unit-selection": "unit-selection synthesis"}
WORDS = {  # what festival's voices read: phrases of three to seven of these
    "en-US": "apple river garden window yellow quiet seven orange music paper winter summer bright little mountain "
             "silver coffee morning evening friendly simple travel happy number station letter yesterday tomorrow "
             "careful market village ocean forest thunder golden table",
    "it-IT": "acqua casa sole luna mare strada giorno notte verde rosso piccolo grande bello tempo sempre amico "
             "lavoro città montagna finestra giardino musica treno stazione mattina sera inverno estate sette nove "
             "dieci libro lettera viaggio felice tranquillo",
    "fi-FI": "talo järvi metsä kaupunki aurinko kuu tähti kivi vesi tuli punainen sininen vihreä keltainen yksi "
             "kaksi kolme neljä viisi kuusi huomenna eilen kaunis iso pieni kirja ikkuna puutarha musiikki juna "
             "asema aamu ilta talvi kesä ystävä",
    "ru-RU": "дом река сад окно желтый тихий семь музыка бумага зима лето светлый маленький гора серебро утро "
             "вечер друг простой дорога счастье число станция письмо вчера завтра рынок деревня море лес гром "
             "золотой стол город",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Job:
    """One source utterance: a file, or a phrase for a festival voice to read."""

    voice: Voice
    original: str
    transcript: str | None


@dataclasses.dataclass(frozen=True)
class Voice:
    """One speaker in one language from one package; subclasses say where its audio comes from
    (`jobs`) and how to decode one (`load`: mono `[samples]`, its rate, the source's channels)."""

    speaker: str  # the label; one person has one id whatever the package or language
    name: str
    sex: str
    language: str
    package: str
    folder: str  # under the root its kind names
    kind = "recorded"
    root = "festival"

    def needs(self, roots: dict[str, Path]) -> dict[str, Path | str]:
        """Package -> what of it the build reads: a path, or a program on PATH."""
        return {self.package: roots[self.root] / self.folder}

    def licence(self, roots: dict[str, Path], original: str) -> str:
        return read_licence(self.package, "*", roots["doc"])

    def caption(self) -> str:
        return f"{self.name}, a {self.sex} voice, speaking {LANGUAGES[self.language]} ({KINDS[self.kind]})"

    def example(self, job: Job) -> str:
        """How a skipped job is named in the report."""
        return job.original


@dataclasses.dataclass(frozen=True)
class AsteriskVoice(Voice):
    """Asterisk prompts: raw G.722 files (16 kHz); transcripts from the language's text package."""

    root = "asterisk"

    @property
    def code(self) -> str:
        return self.language.split("-")[0]

    def needs(self, roots: dict[str, Path]) -> dict[str, Path | str]:
        return {self.package: roots["asterisk"] / self.folder, "ffmpeg": "ffmpeg"}

    def licence(self, roots: dict[str, Path], original: str) -> str:
        # the copyright file's stanzas are per language folder of the upstream tarball ("fr-*")
        return read_licence(self.package, f"{self.code}-g722/{Path(original).name}", roots["doc"])

    def jobs(self, roots: dict[str, Path], seed: int, count: int) -> list[Job]:
        folder = roots["asterisk"] / self.folder
        texts = roots["doc"] / f"asterisk-core-sounds-{self.code}" / f"core-sounds-{self.code}.txt.gz"
        transcripts = {}
        if texts.is_file():
            for line in gzip.open(texts, "rt", encoding="utf-8-sig", errors="replace"):
                key, colon, text = line.partition(":")
                if colon and not key.startswith(";"):
                    transcripts[key.strip()] = text.strip()
        files = sorted(folder.rglob("*.g722"))
        return [
            Job(self, str(path), transcripts.get(path.relative_to(folder).with_suffix("").as_posix())) for path in files
        ]

    def load(self, job: Job) -> tuple[np.ndarray, int, int]:
        path = Path(job.original)
        if not path.is_file():
            raise ClipSkipped("missing file")
        prompt = path.with_suffix("").as_posix().split(f"/{self.folder}/", 1)[-1]  # e.g. "digits/7"
        if prompt in NON_SPEECH or prompt.startswith("silence/"):
            raise ClipSkipped("not speech (an Asterisk tone or silence prompt)")
        container = sniff_container(path.read_bytes()[:4])
        if container:
            raise ClipSkipped(f"format differs from its name (a .g722 holding {container})")
        return decode_with_ffmpeg(path, 16_000, 1, input_format="g722")[0], 16_000, 1


@dataclasses.dataclass(frozen=True)
class CorpusVoice(Voice):
    """The recorded sentences (wav/*.wav, etc/txt.done.data) a festvox voice was built from."""

    def jobs(self, roots: dict[str, Path], seed: int, count: int) -> list[Job]:
        folder = roots["festival"] / self.folder
        prompts = folder / "etc" / "txt.done.data"
        lines = prompts.read_text(encoding="utf-8", errors="replace").splitlines() if prompts.is_file() else []
        matches = (re.match(r'\(\s*(\S+)\s+"(.*)"\s*\)', line) for line in lines)
        transcripts = {match[1]: match[2].replace("+", "") for match in matches if match}  # "+" marks stress
        return [Job(self, str(path), transcripts.get(path.stem)) for path in sorted((folder / "wav").glob("*.wav"))]

    def load(self, job: Job) -> tuple[np.ndarray, int, int]:
        return _mono(read_recording(job.original))


@dataclasses.dataclass(frozen=True)
class FestivalVoice(Voice):
    """A festival voice reading phrases of its language (`text2wave`)."""

    voice: str = ""
    encoding: str = "utf-8"  # the Italian and Finnish voices read Latin-1
    kind: str = "diphone"

    def needs(self, roots: dict[str, Path]) -> dict[str, Path | str]:
        return {self.package: roots["festival"] / self.folder, "festival": "text2wave"}

    def jobs(self, roots: dict[str, Path], seed: int, count: int) -> list[Job]:
        rng, words = random.Random(f"{seed}:{self.voice}"), WORDS[self.language].split()
        phrases = [" ".join(rng.sample(words, rng.randint(3, 7))) for _ in range(count)]
        return [
            Job(self, str(roots["festival"] / self.folder), phrase[0].upper() + phrase[1:] + ".") for phrase in phrases
        ]

    def example(self, job: Job) -> str:
        return f"{self.voice} {job.transcript!r}"

    def load(self, job: Job) -> tuple[np.ndarray, int, int]:
        with tempfile.TemporaryDirectory(prefix="voices-") as scratch:
            text, wav = Path(scratch) / "in.txt", Path(scratch) / "out.wav"
            text.write_bytes(job.transcript.encode(self.encoding))
            command = ["text2wave", "-eval", f"(voice_{self.voice})", str(text), "-o", str(wav)]
            try:
                done = subprocess.run(command, capture_output=True, timeout=120)
            except (OSError, subprocess.SubprocessError):
                raise ClipSkipped("text2wave failed") from None
            if done.returncode != 0 or not wav.is_file():
                raise ClipSkipped("text2wave failed")
            return _mono(read_recording(wav))


VOICES = (
    AsteriskVoice("allison", "Allison", "female", "en-US", "asterisk-core-sounds-en-g722", "en_US_f_Allison"),
    AsteriskVoice("allison", "Allison", "female", "es-MX", "asterisk-core-sounds-es-g722", "es_MX_f_Allison"),
    AsteriskVoice("june", "June", "female", "fr-CA", "asterisk-core-sounds-fr-g722", "fr_CA_f_June"),
    AsteriskVoice("carlo", "Carlo", "male", "it-IT", "asterisk-core-sounds-it-g722", "it_IT_m_Carlo"),
    AsteriskVoice("ivrvoice_ru", "the IvrvoiceRU speaker", "female", "ru-RU", "asterisk-core-sounds-ru-g722",
                  "ru_RU_f_IvrvoiceRU"),
    CorpusVoice("msu_nsh", "nsh, festvox-ru's speaker", "male", "ru-RU", "festvox-ru", "russian/msu_ru_nsh_clunits"),
    FestivalVoice("kal", "kal", "male", "en-US", "festvox-kallpc16k", "english/kal_diphone", "kal_diphone"),
    FestivalVoice("ked", "ked", "male", "en-US", "festvox-kdlpc16k", "english/ked_diphone", "ked_diphone"),
    FestivalVoice("ifm_pc", "pc", "male", "it-IT", "festvox-itapc16k", "italian/pc_diphone", "pc_diphone", "latin-1"),
    FestivalVoice("ifm_lp", "lp", "female", "it-IT", "festvox-italp16k", "italian/lp_diphone", "lp_diphone", "latin-1"),
    FestivalVoice("suopuhe_lj", "suopuhe lj", "female", "fi-FI", "festvox-suopuhe-lj", "finnish/suo_fi_lj_diphone",
                  "suo_fi_lj_diphone", "latin-1"),
    FestivalVoice("suopuhe_mv", "suopuhe mv", "male", "fi-FI", "festvox-suopuhe-mv", "finnish/hy_fi_mv_diphone",
                  "hy_fi_mv_diphone", "latin-1"),
    FestivalVoice("msu_nsh", "nsh, festvox-ru's voice", "male", "ru-RU", "festvox-ru", "russian/msu_ru_nsh_clunits",
                  "msu_ru_nsh_clunits", kind="unit-selection"),
)  # fmt: skip


def _mono(recording: Recording) -> tuple[np.ndarray, int, int]:
    return recording.audio.mean(axis=0), recording.sample_rate, recording.channels


def cut_at_pauses(audio: np.ndarray, sample_rate: int, max_seconds: float) -> list[np.ndarray]:
    """Pieces of at most `max_seconds`, each cut at the quietest 20 ms of the second half of the
    longest piece allowed, so that cuts fall in pauses where there are any."""
    limit, frame = int(max_seconds * sample_rate), int(0.02 * sample_rate)
    pieces, start = [], 0
    while audio.size - start > limit:
        window = audio[start + limit // 2 : start + limit]
        count = window.size // frame
        energy = (window[: count * frame].reshape(count, frame) ** 2).mean(axis=1)
        cut = start + limit // 2 + int(np.argmin(energy)) * frame + frame // 2
        pieces.append(audio[start:cut])
        start = cut
    pieces.append(audio[start:])
    return pieces


class _Renderer:
    """Turns one job into its clips (manifest rows), or a (reason, example) skip."""

    def __init__(self, out_dir: Path, roots: dict[str, Path], sample_rate: int, max_seconds: float, min_seconds: float,
                 splits: dict[str, str]):  # fmt: skip
        self.out_dir, self.roots, self.sample_rate = out_dir, roots, sample_rate
        self.max_seconds, self.min_seconds, self.splits = max_seconds, min_seconds, splits

    def __call__(self, item: tuple[int, Job]) -> list[dict] | tuple[str, str]:
        index, job = item
        voice = job.voice
        try:
            audio, rate, original_channels = voice.load(job)
        except ClipSkipped as skip:
            return str(skip), voice.example(job)
        if clipped_share(audio[None]) > 0.5:
            return "clipped for most of its length", voice.example(job)
        bounds = speech_bounds(audio, rate)
        if bounds is None or float(np.abs(audio).max()) < SILENT_PEAK:  # a codec's noise floor is no speech
            return "silent", voice.example(job)
        bandwidth = effective_bandwidth(audio[None, bounds[0] : bounds[1]], rate, n_fft=1024)
        speech = resample_channels(audio[None, bounds[0] : bounds[1]], rate, self.sample_rate)[0]
        pieces = []
        for piece in cut_at_pauses(speech, self.sample_rate, self.max_seconds):
            inner = speech_bounds(piece, self.sample_rate)
            if inner is not None and inner[1] - inner[0] >= self.min_seconds * self.sample_rate:
                pieces.append(piece[inner[0] : inner[1]])
        if not pieces:
            return f"shorter than {self.min_seconds:g} s of speech", voice.example(job)
        fade = np.linspace(0.0, 1.0, int(0.01 * self.sample_rate), dtype=np.float32)
        rows = []
        for number, piece in enumerate(pieces):
            piece = piece * np.float32(0.95 / max(float(np.abs(piece).max()), 1e-8))
            piece[: fade.size] *= fade
            piece[-fade.size :] *= fade[::-1]
            name = f"wavs/{voice.speaker}_{index:05d}_{number}.wav"
            write_wav(self.out_dir / name, piece[None], self.sample_rate)
            row = {"path": name, "label": voice.speaker, "split": self.splits[voice.speaker], "text": voice.caption(),
                   "seconds": round(piece.size / self.sample_rate, 4), "sample_rate": self.sample_rate, "channels": 1,
                   "speaker": voice.speaker, "language": voice.language, "kind": voice.kind, "sex": voice.sex,
                   "package": voice.package, "package_version": package_version(voice.package),
                   "original_path": job.original, "licence": voice.licence(self.roots, job.original),
                   "original_rate": rate, "original_channels": original_channels, "bandwidth_hz": bandwidth,
                   "piece": f"{number + 1}/{len(pieces)}"}  # fmt: skip
            if job.transcript and len(pieces) == 1:  # a piece of a cut utterance says only part of it
                row["transcript"] = job.transcript
            rows.append(row)
        return rows


def split_of(speakers: set[str], test: tuple[str, ...], valid: tuple[str, ...]) -> dict[str, str]:
    """Speaker -> split: the named held-out speakers, every other in train."""
    known = sorted({voice.speaker for voice in VOICES})
    wrong = sorted((set(test) | set(valid)) - set(known)) or sorted(set(test) & set(valid))
    if wrong:
        raise ValueError(f"held-out speakers {wrong}: unknown, or in both test and valid; choose from {known}")
    return {speaker: "test" if speaker in test else "valid" if speaker in valid else "train" for speaker in speakers}


def rate_check(rows: list[dict], out_dir: Path, per_speaker: int = 40) -> dict[str, dict]:
    """Per speaker, listening-free signs that the audio was decoded at its true rate: median clip
    length, seconds per transcript character, and the level of 7-8 kHz against 0.1-4 kHz (dB)."""
    checks = {}
    for speaker in sorted({row["speaker"] for row in rows}):
        own = [row for row in rows if row["speaker"] == speaker and row["kind"] == "recorded"]
        levels = []
        for row in own[:: max(1, len(own) // per_speaker)][:per_speaker]:
            audio, rate = soundfile.read(str(out_dir / row["path"]), dtype="float32")
            power, freqs = np.abs(np.fft.rfft(audio)) ** 2, np.fft.rfftfreq(audio.size, 1 / rate)
            high, low = power[(freqs >= 7000) & (freqs < 8000)].mean(), power[(freqs >= 100) & (freqs < 4000)].mean()
            levels.append(10 * np.log10((high + 1e-20) / (low + 1e-20)))
        spoken = [row["seconds"] / len(row["transcript"]) for row in own if row.get("transcript")]
        if own:
            checks[speaker] = {"median_seconds": round(float(np.median([row["seconds"] for row in own])), 2),
                               "seconds_per_character": round(float(np.median(spoken)), 3) if spoken else None,
                               "level_7_8k_db": round(float(np.median(levels)), 1)}  # fmt: skip
    return checks


def build_voices(
    out_dir: str | os.PathLike,
    speakers: list[str] | None = None,
    festival_clips: int = 200,
    max_seconds: float = 6.0,
    min_seconds: float = 0.25,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    *,
    test_speakers: tuple[str, ...] = TEST_SPEAKERS,
    valid_speakers: tuple[str, ...] = VALID_SPEAKERS,
    asterisk_root: str | os.PathLike = ASTERISK_ROOT,
    festival_root: str | os.PathLike = FESTIVAL_ROOT,
    doc_root: str | os.PathLike = DOC_ROOT,
    sample_rate: int = 16_000,
    overwrite: bool = False,
) -> BuildReport:
    """Speech clips of the installed voices into `out_dir` (wavs/, manifest.jsonl, info.json,
    balance.png); `speakers` picks some (default: all of `VOICES`). Same packages, same clips."""
    known = sorted({voice.speaker for voice in VOICES})
    if speakers is not None and (not speakers or set(speakers) - set(known)):
        raise ValueError(f"speakers={speakers}: choose from {known}")
    if not 0 < min_seconds < max_seconds or festival_clips < 0:
        raise ValueError(f"need 0 < min_seconds ({min_seconds}) < max_seconds ({max_seconds}) and festival_clips >= 0")
    chosen = [voice for voice in VOICES if speakers is None or voice.speaker in speakers]
    roots = {"asterisk": Path(asterisk_root), "festival": Path(festival_root), "doc": Path(doc_root)}
    needs = {package: thing for voice in chosen for package, thing in voice.needs(roots).items()}
    installed = {
        package: thing.exists() if isinstance(thing, Path) else shutil.which(thing) for package, thing in needs.items()
    }
    missing = {package: str(thing) for package, thing in needs.items() if not installed[package]}
    require_packages(missing, extra=", or leave those speakers out with --speakers")
    splits = split_of({voice.speaker for voice in chosen}, tuple(test_speakers), tuple(valid_speakers))
    started = time.perf_counter()
    out_dir = prepare_out_dir(out_dir, overwrite)
    jobs = [job for voice in chosen for job in voice.jobs(roots, seed, festival_clips)]
    report = BuildReport("voices", out_dir, out_dir / "manifest.jsonl")
    renderer = _Renderer(out_dir, roots, sample_rate, max_seconds, min_seconds, splits)
    rows = []
    for result in parallel_map(renderer, list(enumerate(jobs)), workers, progress, "voices", total=len(jobs)):
        if isinstance(result, tuple):
            report.skip(*result)
        else:
            rows.extend(result)
    if not rows:
        raise BuildError(f"voices: no usable clip among {len(jobs)} sources (skipped: {report.skipped})")
    report.notes["utterances cut at pauses"] = len({row["original_path"] for row in rows if row["piece"] != "1/1"})
    report.notes["synthetic clips (kind != recorded)"] = sum(row["kind"] != "recorded" for row in rows)
    info = {
        "builder": "voices",
        "args": dict(
            speakers=speakers,
            festival_clips=festival_clips,
            max_seconds=max_seconds,
            min_seconds=min_seconds,
            seed=seed,
            sample_rate=sample_rate,
            roots={name: str(root) for name, root in roots.items()},
        ),  # fmt: skip
        "label": "speaker id, one per person: Allison's English and Spanish prompts share one, and so do festvox-ru's "
        "recordings and its voice",
        "split_rule": "by speaker: test and valid hold the named speakers, train every other",
        "speakers": {
            split: sorted(s for s, where in splits.items() if where == split) for split in ("train", "valid", "test")
        },
        "packages": {voice.package: package_version(voice.package) for voice in chosen},
        "rate_check": rate_check(rows, out_dir),
        "summary": summary(rows, ("label", "language", "kind", "split")),
    }
    plot_class_balance(rows, out_dir / "balance.png", f"voices: {len(rows)} clips per speaker and split")
    return write_outputs(report, rows, info, started)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    speakers = ",".join(dict.fromkeys(voice.speaker for voice in VOICES))
    parser.add_argument("--out", required=True, help="output folder (wavs/, manifest.jsonl, info.json, balance.png)")
    parser.add_argument("--speakers", help=f"comma-separated speaker ids (default: all): {speakers}")
    parser.add_argument("--festival-clips", type=int, default=200, help="phrases each festival voice reads")
    parser.add_argument("--max-seconds", type=float, default=6.0, help="longer utterances are cut at pauses")
    parser.add_argument("--min-seconds", type=float, default=0.25, help="shorter pieces are dropped")
    parser.add_argument("--test-speakers", default=",".join(TEST_SPEAKERS), help="held out for test")
    parser.add_argument("--valid-speakers", default=",".join(VALID_SPEAKERS), help="held out for valid")
    parser.add_argument("--asterisk-root", default=str(ASTERISK_ROOT))
    parser.add_argument("--festival-root", default=str(FESTIVAL_ROOT))
    parser.add_argument("--doc-root", default=str(DOC_ROOT), help="where the packages' copyright files are")
    parser.add_argument("--seed", type=int, default=0, help="draws the festival phrases")
    parser.add_argument("--workers", type=int, help="parallel decoders (default: one per CPU)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing build in --out")


def run(args: argparse.Namespace) -> int:
    def names(text: str | None) -> list[str]:
        return [name.strip() for name in (text or "").split(",") if name.strip()]

    report = build_voices(
        args.out, names(args.speakers) or None, args.festival_clips, args.max_seconds, args.min_seconds, args.seed,
        args.workers, test_speakers=tuple(names(args.test_speakers)), valid_speakers=tuple(names(args.valid_speakers)),
        asterisk_root=args.asterisk_root, festival_root=args.festival_root, doc_root=args.doc_root,
        overwrite=args.overwrite,
    )  # fmt: skip
    info = json.loads((report.out_dir / "info.json").read_text(encoding="utf-8"))
    print(report)
    print(info["summary"])
    print(f"held out: {info['speakers']['test']} (test), {info['speakers']['valid']} (valid)")
    print(f"picture: {report.out_dir / 'balance.png'}")
    return 0
