"""Control curves: time-varying conditions a model follows (pitch contour, loudness envelope).

A curve is a 1-D sequence spread evenly over a clip: `f0` in Hz (0 = unvoiced, NaN = not given)
and `loudness` in dB relative to full scale (RMS over a frame; NaN = not given). Any length is
accepted where a model takes a curve; it is resampled to the model's frame rate.

`extract(audio, sample_rate)` measures both from a recording at the bundled models' frame rate
(16 kHz / 256 = 62.5 frames per second). F0 comes from librosa's pYIN by default, or from
torchcrepe (the CREPE network, tiny or full; its weights ship with the package):
benchmarks/controls.py measured them on 60 rendered notes of known pitch: pYIN put 94.6% of
sounding frames within 50 cents (median error 1.3 cents) at 0.14 s per clip, CREPE tiny 88.9%
(6.1 cents, 0.32 s), CREPE full 94.2% (5.9 cents, 4.6 s). On speech CREPE calls more frames
voiced (27% against pYIN's 15% on digits), so it stays a choice (`method="crepe"`). `shape(...)` draws the curves a person
asks for by name (flat, glide, vibrato, steps, crescendo, ...).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from audiodiff.errors import UserError

__all__ = [
    "CURVES",
    "ControlError",
    "FRAME_RATE",
    "SHAPES",
    "default_f0_method",
    "extract",
    "extract_f0",
    "extract_loudness",
    "f0_agreement",
    "hz_to_midi",
    "midi_to_hz",
    "resample_curve",
    "shape",
]

FRAME_RATE = 16000 / 256  # frames per second of the bundled mel models
CURVES = ("f0", "loudness")
F0_MIN, F0_MAX = 40.0, 1600.0  # Hz searched for a fundamental (E1 .. G6)
LOUDNESS_FLOOR = -80.0  # dB: silence reads as this, never -inf
ANALYSIS_RATE = 16000  # both extractors work at this rate
SILENCE_DB = -60.0  # frames this far below full scale are unvoiced whatever the pitch tracker says
ANALYSIS_HOP = 256  # 16 ms at 16 kHz: the bundled frame rate; other rates are resampled from it
CREPE_VOICING = 0.5  # torchcrepe periodicity above which a frame is voiced (measured: benchmarks/controls.py)


class ControlError(UserError, ValueError):
    """A curve or a recording that cannot be used as a control; the message names the fix."""


def midi_to_hz(pitch) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def hz_to_midi(hz) -> np.ndarray:
    """Hz -> MIDI pitch (fractional); 0, negative or NaN -> NaN."""
    hz = np.asarray(hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hz > 0, 69.0 + 12.0 * np.log2(hz / 440.0), np.nan)


def _mono(audio, sample_rate: int) -> np.ndarray:
    """`[samples]`, `[channels, samples]` or `[1, channels, samples]` -> mono float32 at ANALYSIS_RATE."""
    wave = (
        audio.detach().cpu().float().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio, dtype=np.float32)
    )
    if wave.ndim == 3 and wave.shape[0] == 1:
        wave = wave[0]
    if wave.ndim == 2:
        wave = wave.mean(axis=0)
    if wave.ndim != 1 or wave.size == 0:
        raise ControlError(f"audio: expected [samples] or [channels, samples], got shape {list(wave.shape)}")
    if not np.isfinite(wave).all():
        raise ControlError("audio: contains NaN or Inf samples")
    if sample_rate != ANALYSIS_RATE:
        import librosa

        wave = librosa.resample(wave, orig_sr=sample_rate, target_sr=ANALYSIS_RATE, res_type="soxr_hq")
    return wave.astype(np.float32)


def _num_frames(samples: int, frame_rate: float) -> int:
    return max(1, int(math.floor(samples / ANALYSIS_RATE * frame_rate + 1e-6)))


def extract_loudness(audio, sample_rate: int, frame_rate: float = FRAME_RATE) -> np.ndarray:
    """RMS level per frame in dB relative to full scale (a full-scale sine reads -3 dB), `[frames]`."""
    wave = _mono(audio, sample_rate)
    return _loudness(wave, _num_frames(wave.size, frame_rate))


def _loudness(wave: np.ndarray, frames: int) -> np.ndarray:
    hop = wave.size / frames
    window = max(int(round(2 * hop)), 16)
    centres = (np.arange(frames) + 0.5) * hop
    padded = np.pad(wave.astype(np.float64) ** 2, (window, window))
    cumulative = np.concatenate([[0.0], np.cumsum(padded)])
    starts = np.clip(np.round(centres - window / 2).astype(int) + window, 0, padded.size - window)
    power = (cumulative[starts + window] - cumulative[starts]) / window
    return np.maximum(10 * np.log10(np.maximum(power, 1e-12)), LOUDNESS_FLOOR).astype(np.float32)


def extract_f0(audio, sample_rate: int, frame_rate: float = FRAME_RATE, method: str = "auto") -> np.ndarray:
    """Fundamental frequency per frame in Hz (0 = unvoiced), `[frames]`. `method`: "pyin"
    (librosa), "crepe" (torchcrepe tiny), "crepe-full" or "auto" (pyin)."""
    wave = _mono(audio, sample_rate)
    return _f0(wave, _num_frames(wave.size, frame_rate), method)


def default_f0_method() -> str:
    """What method="auto" uses: pYIN, the most accurate on rendered notes and the fastest
    (benchmarks/controls.py; see the module docstring)."""
    return "pyin"


def _f0(wave: np.ndarray, frames: int, method: str) -> np.ndarray:
    if method == "auto":
        method = default_f0_method()
    if method not in F0_METHODS:
        raise ControlError(f"method={method!r}: choose one of {sorted(F0_METHODS)} or 'auto'")
    hop = ANALYSIS_HOP
    padded = np.pad(wave, (0, max(0, 2048 - wave.size)))
    f0 = F0_METHODS[method](padded, hop)[: int(math.ceil(wave.size / hop)) + 1]
    f0 = resample_curve(f0, frames, kind="f0")
    silent = _loudness(wave, frames) < SILENCE_DB
    return np.where(silent, 0.0, f0).astype(np.float32)


def _pyin(wave: np.ndarray, hop: int) -> np.ndarray:
    import librosa

    # resolution 0.25 (a quarter semitone between pitch bins, interpolated within) runs 7x faster
    # than librosa's default 0.1 at the same accuracy on rendered notes (benchmarks/controls.py)
    f0, voiced, _ = librosa.pyin(
        wave,
        fmin=F0_MIN,
        fmax=F0_MAX,
        sr=ANALYSIS_RATE,
        frame_length=1024,
        hop_length=hop,
        center=True,
        resolution=0.25,
    )
    return np.where(voiced & np.isfinite(f0), f0, 0.0)


def _crepe(wave: np.ndarray, hop: int, model: str = "tiny") -> np.ndarray:
    try:
        import torchcrepe
    except ImportError:
        raise ControlError(
            "method='crepe' needs torchcrepe: pip install torchcrepe (it ships its weights), or use method='pyin'"
        ) from None
    audio = torch.from_numpy(wave)[None]
    with torch.inference_mode():
        pitch, periodicity = torchcrepe.predict(
            audio, ANALYSIS_RATE, hop, F0_MIN, F0_MAX, model=model, batch_size=512, device="cpu",
            return_periodicity=True, pad=True, decoder=torchcrepe.decode.weighted_argmax,
        )  # fmt: skip
    periodicity = torchcrepe.filter.median(periodicity, 3)
    pitch, periodicity = pitch[0].numpy(), periodicity[0].numpy()
    return np.where(periodicity >= CREPE_VOICING, pitch, 0.0)


F0_METHODS = {"crepe": _crepe, "crepe-full": lambda wave, hop: _crepe(wave, hop, "full"), "pyin": _pyin}


def extract(audio, sample_rate: int, frame_rate: float = FRAME_RATE, method: str = "auto") -> dict[str, np.ndarray]:
    """`{"f0": Hz per frame (0 = unvoiced), "loudness": dB per frame}` of a recording
    (`[samples]` or `[channels, samples]`, numpy or torch), at `frame_rate` frames per second."""
    wave = _mono(audio, sample_rate)
    frames = _num_frames(wave.size, frame_rate)
    return {"f0": _f0(wave, frames, method), "loudness": _loudness(wave, frames)}


def f0_agreement(asked, measured, cents: float = 50.0) -> dict[str, int]:
    """Frame counts of how a measured F0 follows an asked one (both Hz per frame, 0 or NaN =
    unvoiced; compared over their common length): `voiced` (asked voiced), `within` (asked voiced
    and measured within `cents` of it; an unvoiced measurement is a miss), and the voicing
    confusion `tp` (both voiced), `fp` (only measured voiced), `fn` (only asked voiced)."""
    frames = min(len(asked), len(measured))
    want, got = np.asarray(asked, dtype=np.float64)[:frames], np.asarray(measured, dtype=np.float64)[:frames]
    asked_voiced, got_voiced = np.isfinite(want) & (want > 0), np.isfinite(got) & (got > 0)
    both = asked_voiced & got_voiced
    within = np.abs(1200 * np.log2(got[both] / want[both])) <= cents
    return {
        "voiced": int(asked_voiced.sum()),
        "within": int(within.sum()),
        "tp": int(both.sum()),
        "fp": int((got_voiced & ~asked_voiced).sum()),
        "fn": int((asked_voiced & ~got_voiced).sum()),
    }


def resample_curve(curve, frames: int, kind: str = "loudness") -> np.ndarray:
    """A curve at any length -> `frames` values spread over the same span. NaN (not given) stays
    NaN at the nearest frame; f0 is interpolated in log-frequency, and its unvoiced frames (0)
    stay unvoiced at the nearest frame."""
    values = np.asarray(curve, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ControlError(f"{kind}: an empty curve; give at least one value")
    if values.size == frames:
        return values.astype(np.float32)
    source = (np.arange(values.size) + 0.5) / values.size
    target = (np.arange(frames) + 0.5) / frames
    nearest = np.clip(np.round(target * values.size - 0.5).astype(int), 0, values.size - 1)
    given = np.isfinite(values)
    if kind == "f0":
        voiced = given & (values > 0)
        if not voiced.any():
            return values[nearest].astype(np.float32)
        logs = np.interp(target, source[voiced], np.log(values[voiced]))
        out = np.where(voiced[nearest], np.exp(logs), values[nearest])
        return out.astype(np.float32)
    if not given.any():
        return values[nearest].astype(np.float32)
    out = np.interp(target, source[given], values[given])
    return np.where(given[nearest], out, np.nan).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Shapes a person asks for by name


def _f0_shape(name: str, t: np.ndarray, seconds: np.ndarray, pitch: float, depth: float) -> np.ndarray:
    """MIDI pitch over time (`t` in [0, 1) across the sound, `seconds` from its start) for a named
    contour around `pitch`; `depth` in semitones (vibrato: from its lowest to its highest pitch)."""
    if name == "flat":
        return np.full_like(t, pitch)
    if name == "glide":
        return pitch + depth * (t - 0.5)  # rises `depth` semitones over the clip
    if name == "fall":
        return pitch - depth * (t - 0.5)
    if name == "vibrato":
        return pitch + 0.5 * min(depth, 2.0) * np.sin(2 * np.pi * VIBRATO_HZ * seconds)
    if name == "steps":
        return pitch + np.floor(t * 3) * 2.0  # three notes a whole tone apart
    raise ControlError(f"f0 shape {name!r}: choose one of {sorted(SHAPES['f0'])}")


def _loudness_shape(name: str, t: np.ndarray, seconds: np.ndarray, level: float, depth: float) -> np.ndarray:
    if name == "flat":
        return np.full_like(t, level)
    if name == "crescendo":
        return level - depth / 2 + depth * t
    if name == "decrescendo":
        return level + depth / 2 - depth * t
    if name == "swell":
        return level - depth / 2 + depth * np.sin(np.pi * t)
    if name == "tremolo":
        return level + depth / 4 * np.sin(2 * np.pi * TREMOLO_HZ * seconds)
    raise ControlError(f"loudness shape {name!r}: choose one of {sorted(SHAPES['loudness'])}")


VIBRATO_HZ, TREMOLO_HZ = 5.5, 6.0  # the middle of the notes data's 4-7 Hz and 3-7 Hz
DEFAULT_DEPTH = {"vibrato": 1.0}  # semitones, lowest to highest (+-50 cents); other f0 shapes 2, loudness 20 dB
SHAPES = {
    "f0": {"flat", "glide", "fall", "vibrato", "steps"},
    "loudness": {"flat", "crescendo", "decrescendo", "swell", "tremolo"},
}


def shape(
    kind: str,
    name: str,
    frames: int = 62,
    pitch: float = 60.0,
    level: float = -20.0,
    depth: float | None = None,
    sound: float = 0.8,
    frame_rate: float = FRAME_RATE,
) -> np.ndarray:
    """A named curve over `frames` at `frame_rate` frames per second (`Pipeline.curve_frame_rate`):
    f0 (Hz) around MIDI `pitch` (depth in semitones: default 2, vibrato 1 from lowest to highest),
    or loudness (dB) around `level` (depth in dB, default 20). Vibrato and tremolo keep their rate
    in Hz whatever the clip's length. The sound lasts the first `sound` of the clip: f0 is unvoiced
    after it, loudness at the floor."""
    if kind not in SHAPES:
        raise ControlError(f"curve {kind!r}: choose one of {list(SHAPES)}")
    if frames < 1 or not 0 < sound <= 1 or not frame_rate > 0:
        raise ControlError(
            f"frames={frames} must be at least 1, sound={sound} in (0, 1] and frame_rate={frame_rate} above 0"
        )
    t = (np.arange(frames) + 0.5) / frames
    on = t < sound
    ts, seconds = t / sound, np.arange(frames) / frame_rate
    depth = DEFAULT_DEPTH.get(name, 2.0 if kind == "f0" else 20.0) if depth is None else depth
    if kind == "f0":
        curve = midi_to_hz(_f0_shape(name, ts, seconds, pitch, depth))
        return np.where(on, curve, 0.0).astype(np.float32)
    curve = _loudness_shape(name, ts, seconds, level, depth)
    return np.where(on, curve, LOUDNESS_FLOOR).astype(np.float32)
