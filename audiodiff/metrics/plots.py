"""Evaluation figures as PNG files: a grid of mel spectrograms and a per-class accuracy chart.

Drawn on matplotlib's Agg canvas directly (no pyplot), so they work headless and leave the
caller's matplotlib backend alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from audiodiff.audio import MelSpec

__all__ = ["default_mel_spec", "plot_class_accuracy", "plot_spectrogram_grid"]


def default_mel_spec(sample_rate: int) -> MelSpec:
    """The standard analysis at `sample_rate` (f_max capped at Nyquist)."""
    return MelSpec(sample_rate=sample_rate, f_max=min(8000.0, sample_rate / 2))


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)
    return path


def plot_spectrogram_grid(
    audio: torch.Tensor | Sequence[torch.Tensor],
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mel_spec: MelSpec | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 4,
) -> Path:
    """Write normalised log-mel spectrograms of clips (`[n, samples]`, or a list of `[samples]`
    / `[channels, samples]`) as a grid PNG at `path`; give `sample_rate` or `mel_spec`."""
    if mel_spec is None:
        if sample_rate is None:
            raise ValueError("plot_spectrogram_grid: pass sample_rate= or mel_spec=")
        mel_spec = default_mel_spec(sample_rate)
    clips = [torch.as_tensor(clip).float() for clip in audio]
    clips = [clip.mean(0) if clip.dim() == 2 else clip for clip in clips]
    if not clips:
        raise ValueError("plot_spectrogram_grid: no clips to draw")
    if titles is not None and len(titles) != len(clips):
        raise ValueError(f"plot_spectrogram_grid: {len(titles)} titles for {len(clips)} clips")
    columns = max(1, min(columns, len(clips)))
    rows = math.ceil(len(clips) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows))  # inches
    axes = figure.subplots(rows, columns, squeeze=False, sharey=True)
    width, height = 3.2 * columns, 2.4 * rows  # margins below are in inches
    figure.subplots_adjust(
        left=0.6 / width, right=1 - 0.1 / width, bottom=0.5 / height, top=1 - 0.3 / height, hspace=0.45, wspace=0.1
    )
    for index, ax in enumerate(axes.flat):
        if index >= len(clips):
            ax.set_axis_off()
            continue
        mel = mel_spec(clips[index]).numpy()  # [n_mels, frames]
        seconds = clips[index].shape[-1] / mel_spec.sample_rate
        extent = (0, seconds, 0, mel_spec.n_mels)
        ax.imshow(mel, origin="lower", aspect="auto", vmin=-1, vmax=1, cmap="magma", extent=extent)
        ax.set_title(titles[index] if titles else f"clip {index}", fontsize=9)
        ax.tick_params(labelsize=7)
        if index % columns == 0:
            ax.set_ylabel("mel bin", fontsize=8)
        if index + columns >= len(clips):
            ax.set_xlabel("seconds", fontsize=8)
    return _save(figure, path)


def plot_class_accuracy(
    per_class_accuracy: Mapping[str, float | None],
    path: str | os.PathLike,
    title: str = "Per-class accuracy",
    compare: Mapping[str, float | None] | None = None,
    names: tuple[str, str] = ("generated", "real"),
) -> Path:
    """Write a bar chart PNG of accuracy per class (classes with no clips are left empty);
    `compare` draws a second bar per class (e.g. real clips, the floor), `names` labels the two."""
    if not per_class_accuracy:
        raise ValueError("plot_class_accuracy: no classes")
    labels = list(per_class_accuracy)
    series = [[per_class_accuracy[label] for label in labels]]
    if compare is not None:
        series.append([compare.get(label) for label in labels])
    width = 0.8 / len(series)
    figure = Figure(figsize=(max(4.0, 0.6 * len(series) * len(labels) + 1.5), 3.2))
    ax = figure.subplots()
    figure.subplots_adjust(bottom=0.22, top=0.88)
    colors = ("tab:blue", "tab:gray")
    for index, values in enumerate(series):
        offset = (index - (len(series) - 1) / 2) * width
        positions = [x + offset for x in range(len(labels))]
        name = names[index] if compare is not None else None
        ax.bar(positions, [value or 0.0 for value in values], width=width, color=colors[index], label=name)
        for x, value in zip(positions, values):
            ax.text(x, (value or 0.0) + 0.02, "n/a" if value is None else f"{value:.2f}", ha="center", fontsize=6)
    ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 6 else 0, fontsize=8)
    ax.set_ylim(0, 1.35 if compare is not None else 1.1)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    if compare is not None:
        ax.legend(fontsize=7, loc="upper right", ncol=2)
    return _save(figure, path)
