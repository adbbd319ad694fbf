"""Pictures a person would rather look at than read: spectrograms and loss curves (PNG)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = [
    "plot_curves",
    "plot_histograms",
    "plot_loss_curve",
    "plot_mels",
    "plot_spectrograms",
    "spectrogram_image",
    "waveform_spectrogram_image",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    """Lay out, write (making the folder) and close a figure."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def _log_spectrogram(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    from audiodiff.audio import MelSpec

    mel_spec = MelSpec(sample_rate=sample_rate, f_max=sample_rate / 2, n_mels=80)
    audio = torch.as_tensor(audio).float().reshape(-1)
    if audio.numel() <= mel_spec.n_fft:
        audio = torch.nn.functional.pad(audio, (0, mel_spec.n_fft + mel_spec.hop_length - audio.numel()))
    return mel_spec(audio)


def plot_spectrograms(
    clips: list[torch.Tensor],
    sample_rate: int,
    path: str | os.PathLike,
    titles: list[str] | None = None,
    columns: int = 4,
) -> Path:
    """A grid of mel spectrograms of audio clips (`[samples]` or `[channels, samples]`)."""
    clips = [torch.as_tensor(clip).float() for clip in clips]
    mels = [_log_spectrogram(clip[0] if clip.dim() > 1 else clip, sample_rate) for clip in clips]
    return plot_mels(mels, path, titles, columns, [clip.shape[-1] / sample_rate for clip in clips])


def plot_mels(
    mels: list[torch.Tensor],
    path: str | os.PathLike,
    titles: list[str] | None = None,
    columns: int = 4,
    seconds: list[float] | None = None,
) -> Path:
    """A grid of normalised log-mels (`[bands, frames]`, -1..1), against seconds when given, else frames."""
    plt = _pyplot()
    count = max(1, len(mels))
    columns = min(columns, count)
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(mels):
            ax.axis("off")
            continue
        mel = torch.as_tensor(mels[index]).float()
        width = seconds[index] if seconds else mel.shape[-1]
        ax.imshow(
            mel.numpy(),
            origin="lower",
            aspect="auto",
            vmin=-1,
            vmax=1,
            cmap="magma",
            extent=(0, width, 0, mel.shape[0]),
        )
        ax.set_xlabel("seconds" if seconds else "frame")
        ax.set_ylabel("mel band")
        if titles and index < len(titles):
            ax.set_title(titles[index], fontsize=9)
    return _save(fig, path)


def spectrogram_image(audio: torch.Tensor, sample_rate: int, path: str | os.PathLike, title: str | None = None) -> Path:
    """One clip's mel spectrogram as a PNG."""
    return plot_spectrograms([audio], sample_rate, path, [title] if title else None, columns=1)


def waveform_spectrogram_image(
    audio: torch.Tensor, sample_rate: int, path: str | os.PathLike, title: str | None = None
) -> Path:
    """A small picture of one clip `[channels, samples]`: each channel's waveform above the mel
    spectrogram of their mean, on one time axis (a drum hit's attack and tail at a glance)."""
    plt = _pyplot()
    clip = torch.as_tensor(audio).float()
    clip = clip[None] if clip.dim() == 1 else clip
    seconds = clip.shape[-1] / sample_rate
    fig, (wave_ax, mel_ax) = plt.subplots(
        2, 1, figsize=(3.2, 2.6), sharex=True, gridspec_kw={"height_ratios": [1, 1.6]}
    )
    times = torch.arange(clip.shape[-1]) / sample_rate
    for channel, colour in zip(clip, ("tab:blue", "tab:orange")):
        wave_ax.plot(times.numpy(), channel.numpy(), color=colour, lw=0.5, alpha=0.8)
    wave_ax.set_ylim(-1, 1)
    wave_ax.set_yticks([-1, 0, 1])
    wave_ax.set_xlim(0, seconds)
    if title:
        wave_ax.set_title(title, fontsize=9)
    mel_ax.imshow(
        _log_spectrogram(clip.mean(dim=0), sample_rate).numpy(),
        origin="lower",
        aspect="auto",
        vmin=-1,
        vmax=1,
        cmap="magma",
        extent=(0, seconds, 0, 80),
    )
    mel_ax.set_xlabel("seconds")
    mel_ax.set_ylabel("mel band")
    return _save(fig, path)


def _mel_band(hz, sample_rate: int, bands: int = 80):
    """Hz -> fractional band of `_log_spectrogram`'s mel axis (Slaney scale, 0..sample_rate/2); NaN stays NaN."""
    import librosa
    import numpy as np

    centres = librosa.mel_frequencies(n_mels=bands + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1]
    hz = np.asarray(hz, dtype=np.float64)
    return np.interp(np.where(hz > 0, hz, np.nan), centres, np.arange(bands) + 0.5, left=np.nan, right=np.nan)


def plot_curves(examples: list[dict], sample_rate: int, path: str | os.PathLike, columns: int = 4) -> Path:
    """Per example (`{"audio", "asked", "measured", "title"}`, curves as `controls.extract`
    gives them): the clip's mel spectrogram with the asked F0 (white) and the measured F0 (cyan)
    drawn on its mel axis, and beneath it the asked and measured loudness (dBFS)."""
    import numpy as np

    plt = _pyplot()
    count = max(1, len(examples))
    columns = min(columns, count)
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(
        2 * rows,
        columns,
        figsize=(3.4 * columns, 3.6 * rows),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1.2] * rows},
    )
    for index in range(rows * columns):
        upper, lower = axes[2 * (index // columns), index % columns], axes[2 * (index // columns) + 1, index % columns]
        if index >= len(examples):
            upper.axis("off"), lower.axis("off")
            continue
        example = examples[index]
        clip = torch.as_tensor(example["audio"]).float().reshape(-1)
        seconds = clip.numel() / sample_rate
        upper.imshow(
            _log_spectrogram(clip, sample_rate).numpy(),
            origin="lower",
            aspect="auto",
            vmin=-1,
            vmax=1,
            cmap="magma",
            extent=(0, seconds, 0, 80),
        )
        for source, colour, width in (("asked", "white", 1.6), ("measured", "cyan", 1.0)):
            for name, ax in (("f0", upper), ("loudness", lower)):
                curve = (example.get(source) or {}).get(name)
                if curve is None:
                    continue
                curve = np.asarray(curve, dtype=np.float64)
                times = (np.arange(len(curve)) + 0.5) * seconds / max(len(curve), 1)
                values = _mel_band(curve, sample_rate) if name == "f0" else curve
                ax.plot(
                    times,
                    values,
                    color=colour if name == "f0" else ("black" if source == "asked" else "tab:cyan"),
                    lw=width,
                    label=f"{source} {name}",
                )
        upper.set_ylim(0, 80)
        upper.set_title(example.get("title", ""), fontsize=9)
        upper.set_ylabel("mel band")
        lower.set_xlim(0, seconds)
        lower.set_ylim(-70, 0)
        lower.set_xlabel("seconds")
        lower.set_ylabel("dBFS")
        if index == 0:
            upper.legend(fontsize=7, loc="upper right")
            lower.legend(fontsize=7, loc="lower left")
    return _save(fig, path)


def plot_loss_curve(records: list[dict], path: str | os.PathLike) -> Path | None:
    """Loss (and every other `*loss*` field) against step, from training log records."""
    keys = sorted({k for record in records for k in record if "loss" in k})
    if not records or not keys:
        return None
    plt = _pyplot()
    latest: dict[int, dict] = {}
    for record in records:  # a resumed run may log a step twice (keep the last); events add fields
        latest.setdefault(int(record["step"]), {}).update(record)
    steps = sorted(latest)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for key in keys:
        points = [(s, latest[s][key]) for s in steps if key in latest[s]]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=key, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if all(latest[s].get(k, 1) > 0 for s in steps for k in keys):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_histograms(
    sets: dict[str, list[float]], path: str | os.PathLike, xlabel: str, marker: tuple[float, str] | None = None
) -> Path:
    """Overlaid density histograms of named value lists, with an optional vertical line (value, label)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, values in sets.items():
        ax.hist(values, bins=30, alpha=0.6, density=True, label=name)
    if marker is not None:
        ax.axvline(marker[0], color="k", linestyle="--", label=marker[1])
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
