"""A compact log-mel CNN classifier for the SC09-style evaluation protocol.

Its softmax gives the class probabilities behind IS / mIS / AM score and the accuracy of
generated clips against their intended labels; its penultimate layer is an embedding for the
Fréchet distance. It trains on a CPU in minutes and saves as a checkpoint directory
(`config.json` + `model.safetensors`), like every other audiodiff model.

Shapes: audio `[batch, samples]` (or `[batch, 1, samples]`) at `mel_spec.sample_rate`;
`embed` -> `[batch, embedding_dim]`; `predict_proba` -> `[batch, num_classes]`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Union

import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from audiodiff.audio import AudioError, MelSpec, crop_or_pad, load_audio, to_channels
from audiodiff.checkpoint import CONFIG, WEIGHTS, check_top_level

__all__ = ["AudioClassifier", "accuracy_report", "evaluate_classifier", "train_classifier"]

_KIND = "audio_classifier"
CONFIG_KEYS = ("kind", "labels", "mel_spec", "architecture", "clip_samples", "training")  # what `config` writes

AudioItem = Union[str, os.PathLike, torch.Tensor]
"""A training or test clip: an audio file, or a tensor `[samples]` / `[channels, samples]`."""


class AudioClassifier(nn.Module):
    """log-mel -> conv blocks (conv 3x3, BatchNorm, ReLU, 2x2 max-pool) -> mean+max pooling over
    frequency and time -> linear+ReLU embedding -> linear head."""

    def __init__(
        self,
        labels: Sequence[str],
        mel_spec: MelSpec | None = None,
        channels: Sequence[int] = (16, 32, 64, 128),
        embedding_dim: int = 128,
        dropout: float = 0.2,
        clip_samples: int | None = None,
    ):
        super().__init__()
        labels = [str(label) for label in labels]
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(f"labels: need at least 2 distinct class names, got {labels}")
        if not channels or embedding_dim < 1:
            raise ValueError(f"channels={list(channels)} must be non-empty and embedding_dim={embedding_dim} positive")
        self.labels = labels
        self.mel_spec = mel_spec or MelSpec()
        self.channels = [int(c) for c in channels]
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)
        self.clip_samples = clip_samples  # the clip length it was trained on; evaluation crops to it
        self.training_info: dict = {}  # filled by train_classifier; saved in config.json
        self.source: str | None = None  # the directory it was loaded from, if any

        blocks, previous = [], 1
        for width in self.channels:
            blocks += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            previous = width
        self.features = nn.Sequential(*blocks)
        self.embedding = nn.Sequential(nn.Linear(2 * previous, self.embedding_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(self.dropout), nn.Linear(self.embedding_dim, len(labels)))

    # -- forward passes
    def _embed(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() == 3:
            audio = to_channels(audio, 1)[:, 0]
        if audio.dim() != 2:
            raise AudioError(f"AudioClassifier: expected audio [batch, samples], got {list(audio.shape)}")
        mel = self.mel_spec(audio.float())[:, None]  # [batch, 1, n_mels, frames]
        hidden = self.features(mel)
        pooled = torch.cat([hidden.mean(dim=(-2, -1)), hidden.amax(dim=(-2, -1))], dim=-1)
        return self.embedding(pooled)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Logits `[batch, num_classes]` from audio `[batch, samples]`."""
        return self.head(self._embed(audio))

    @torch.inference_mode()
    def embed(self, audio: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Penultimate features `[batch, embedding_dim]` (eval mode), for Fréchet distances."""
        return self._map(self._embed, audio, batch_size)

    @torch.inference_mode()
    def predict_proba(self, audio: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Class probabilities `[batch, num_classes]` (softmax, eval mode)."""
        return self._map(lambda chunk: self(chunk).softmax(-1), audio, batch_size)

    def _map(self, function, audio: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Run `function` over `audio` in chunks, in eval mode, on the model's device."""
        audio = torch.as_tensor(audio)
        if audio.dim() == 1:
            audio = audio[None]
        device = next(self.parameters()).device
        with _eval_mode(self):
            outputs = [function(chunk.to(device)) for chunk in audio.split(batch_size)]
        return torch.cat(outputs).float().cpu()

    def predict(self, audio: torch.Tensor, batch_size: int = 64) -> list[str]:
        """The most likely label of each clip."""
        return [self.labels[i] for i in self.predict_proba(audio, batch_size).argmax(-1).tolist()]

    @property
    def label_distribution(self) -> torch.Tensor | None:
        """Class frequencies `[num_classes]` of the training labels (p* of the AM score), if known."""
        counts = self.training_info.get("label_counts")
        if not counts:
            return None
        counts = torch.tensor([float(counts.get(label, 0)) for label in self.labels])
        return counts / counts.sum()

    # -- checkpoint directory
    def config(self) -> dict:
        return {
            "kind": _KIND,
            "labels": self.labels,
            "mel_spec": self.mel_spec.to_dict(),
            "architecture": {"channels": self.channels, "embedding_dim": self.embedding_dim, "dropout": self.dropout},
            "clip_samples": self.clip_samples,
            "training": self.training_info,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write `config.json` and `model.safetensors` into `directory` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG).write_text(json.dumps(self.config(), indent=2) + "\n")
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()}
        safetensors.torch.save_file(state, str(directory / WEIGHTS), metadata={"kind": _KIND})
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> AudioClassifier:
        """Rebuild a classifier saved by `save` (no pickle: JSON config + safetensors)."""
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG, directory / WEIGHTS
        for path in (config_path, weights_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: missing; a classifier directory holds {CONFIG} and {WEIGHTS} "
                    "(make one with train_classifier(...).save(dir) or `audiodiff eval train-classifier`)"
                )
        config = json.loads(config_path.read_text())
        if config.get("kind") != _KIND:
            raise ValueError(f"{config_path}: kind={config.get('kind')!r}, not an audio classifier ({_KIND!r})")
        check_top_level(config, CONFIG_KEYS, config_path)
        model = cls(
            config["labels"],
            MelSpec.from_dict(config["mel_spec"]),
            clip_samples=config.get("clip_samples"),
            **config["architecture"],
        )
        model.training_info = config.get("training") or {}
        model.source = str(directory)
        model.load_state_dict(safetensors.torch.load_file(str(weights_path)))
        return model.to(device).eval()


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------------------------
# Training


def _load_items(
    items: Sequence[tuple[AudioItem, str]], sample_rate: int, clip_samples: int, progress: bool = False
) -> torch.Tensor:
    """Audio `[num_items, clip_samples]` (float16 to halve memory), mono, start-aligned crop or pad."""
    clips = []
    for index, (item, _) in enumerate(tqdm(items, desc="loading clips", disable=not progress, unit="clip")):
        if isinstance(item, torch.Tensor):
            audio = item.detach().float().cpu()
            if audio.dim() == 1:
                audio = audio[None]
            if audio.dim() != 2 or audio.shape[-1] == 0:
                raise AudioError(
                    f"item {index}: expected a tensor [samples] or [channels, samples], got {list(audio.shape)}"
                )
            audio = to_channels(audio, 1, name=f"item {index}")
        else:
            audio, _ = load_audio(item, sample_rate=sample_rate, channels=1)
        clips.append(crop_or_pad(audio[0], clip_samples, random=False).half())
    return torch.stack(clips)


def _augment(audio: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random gain (+-6 dB), time shift (up to 10% of the clip, zero-filled) and, for half the
    clips, Gaussian noise at 20-40 dB SNR. `[batch, samples]` -> same."""
    batch, length = audio.shape
    gain = 10 ** ((torch.rand(batch, 1, generator=generator) * 12 - 6) / 20)
    max_shift = max(1, length // 10)
    shift = torch.randint(-max_shift, max_shift + 1, (batch, 1), generator=generator)
    source = torch.arange(length)[None] - shift
    valid = (source >= 0) & (source < length)
    audio = audio.gather(-1, source.clamp(0, length - 1)) * valid * gain
    rms = audio.pow(2).mean(-1, keepdim=True).sqrt()
    snr_db = torch.rand(batch, 1, generator=generator) * 20 + 20
    noisy = torch.rand(batch, 1, generator=generator) < 0.5
    noise = torch.randn(audio.shape, generator=generator) * rms * 10 ** (-snr_db / 20)
    return audio + noise * noisy


@torch.no_grad()
def _recalibrate_batch_norm(model: AudioClassifier, audio: torch.Tensor, batch_size: int, device) -> None:
    """Set BatchNorm running statistics to exact averages over the clean training clips, so
    eval-mode outputs match what the weights were trained on even after few steps; leaves the
    model in eval mode."""
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    model.train()
    for chunk in audio.split(batch_size):
        model(chunk.float().to(device))
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def _train_epoch(
    model: AudioClassifier, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], optimizer, schedule
) -> tuple[float, float]:
    """One pass over `(audio [batch, samples], class index [batch])` batches; mean loss and accuracy."""
    device = next(model.parameters()).device
    model.train()
    loss_sum, correct, count = 0.0, 0, 0
    for clips, target in batches:
        logits = model(clips.to(device))
        loss = F.cross_entropy(logits, target.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_sum += float(loss.detach()) * len(target)
        correct += int((logits.detach().argmax(-1).cpu() == target).sum())
        count += len(target)
    return loss_sum / count, correct / count


def one_cycle(total_steps: int, warm_share: float = 0.2, start: float = 1 / 25, end: float = 1 / 25e4):
    """The one-cycle schedule (Smith and Topin 2019) as a factor of the peak learning rate: cosine up
    from `start` over the first `warm_share` of the steps, then cosine down to `end`. The values of
    torch's OneCycleLR (anneal "cos", its default factors) where that one works, and defined at any
    length: OneCycleLR divides by zero when the warm-up rounds to no steps (a set of 30 clips at
    batch 32 for 5 epochs)."""
    peak = warm_share * total_steps - 1  # the step at the peak, as OneCycleLR counts

    def cosine(low: float, high: float, fraction: float) -> float:
        return high + (low - high) * (1 + math.cos(math.pi * min(1.0, max(0.0, fraction)))) / 2

    def factor(step: int) -> float:
        if peak > 0 and step <= peak:
            return cosine(start, 1.0, step / peak)
        first = max(peak, 0.0)
        remaining = total_steps - 1 - first
        return cosine(1.0, end, (step - first) / remaining) if remaining > 0 else 1.0

    return factor


def train_classifier(
    items: Sequence[tuple[AudioItem, str]],
    labels: Sequence[str] | None = None,
    mel_spec: MelSpec | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    augment: bool = True,
    seed: int = 0,
    progress: bool = False,
    clip_seconds: float = 1.0,
    channels: Sequence[int] = (16, 32, 64, 128),
    embedding_dim: int = 128,
    device: str | torch.device = "cpu",
) -> AudioClassifier:
    """Train an `AudioClassifier` on `(audio, label)` pairs; audio is a file path or a tensor
    `[samples]` / `[channels, samples]` already at `mel_spec.sample_rate`.

    `labels` fixes the class order (default: sorted distinct labels of `items`). Clips are
    mono, cropped or zero-padded to `clip_seconds`. AdamW with a one-cycle schedule; the run is
    deterministic for a given `seed` on CPU and leaves the global RNG untouched.
    """
    if not items:
        raise ValueError("train_classifier: no training items; pass a list of (path or tensor, label) pairs")
    mel_spec = mel_spec or MelSpec()
    item_labels = [str(label) for _, label in items]
    labels = [str(label) for label in labels] if labels is not None else sorted(set(item_labels))
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(item_labels) - set(index))
    if unknown:
        raise ValueError(
            f"train_classifier: items have labels {unknown} that are not in labels={labels}; "
            "add them or drop those items"
        )
    if len(labels) < 2:
        raise ValueError(
            f"train_classifier: every item has the label {labels}; a classifier tells labels apart, so give "
            "clips of at least 2 labels (DIR/LABEL/x.wav)"
        )
    counts = {label: item_labels.count(label) for label in labels}
    empty = [label for label, count in counts.items() if count == 0]
    if empty:
        raise ValueError(f"train_classifier: no training items for {empty}; add clips or remove those labels")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs={epochs} and batch_size={batch_size} must be positive")

    clip_samples = max(mel_spec.hop_length, round(clip_seconds * mel_spec.sample_rate))
    audio = _load_items(items, mel_spec.sample_rate, clip_samples, progress)
    targets = torch.tensor([index[label] for label in item_labels])
    generator = torch.Generator().manual_seed(seed)  # shuffling and augmentation
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # initialisation and dropout; global RNG untouched
        torch.manual_seed(seed)
        model = AudioClassifier(labels, mel_spec, channels, embedding_dim, clip_samples=clip_samples).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle(epochs * math.ceil(len(items) / batch_size)))
        bar = tqdm(range(epochs), desc="classifier", disable=not progress, unit="epoch")
        for _ in bar:
            order = torch.randperm(len(items), generator=generator)
            batches = ((audio[batch].float(), targets[batch]) for batch in order.split(batch_size))  # lazy
            if augment:
                batches = ((_augment(clips, generator), target) for clips, target in batches)
            train_loss, train_accuracy = _train_epoch(model, batches, optimizer, schedule)
            bar.set_postfix(loss=f"{train_loss:.3f}", accuracy=f"{train_accuracy:.3f}")
        _recalibrate_batch_norm(model, audio, batch_size, device)
    model.training_info = {
        "num_items": len(items),
        "label_counts": counts,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "augment": augment,
        "seed": seed,
        "final_train_loss": train_loss,
        "final_train_accuracy": train_accuracy,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return model


def evaluate_classifier(
    classifier: AudioClassifier, items: Sequence[tuple[AudioItem, str]], batch_size: int = 64
) -> dict:
    """Accuracy of `classifier` on `(audio, label)` pairs: {"accuracy", "per_class_accuracy",
    "confusion" (rows: true label, columns: predicted, in `classifier.labels` order), "num_items"}."""
    if not items:
        raise ValueError("evaluate_classifier: no items")
    item_labels = [str(label) for _, label in items]
    unknown = sorted(set(item_labels) - set(classifier.labels))
    if unknown:
        raise ValueError(
            f"labels {unknown} are not classes of the classifier {classifier.labels}; "
            "rename them or train a classifier on these labels"
        )
    clip_samples = classifier.clip_samples or classifier.mel_spec.sample_rate  # 1 s when unknown
    audio = _load_items(items, classifier.mel_spec.sample_rate, clip_samples).float()
    predicted = classifier.predict_proba(audio, batch_size).argmax(-1).tolist()
    return accuracy_report(classifier.labels, item_labels, [classifier.labels[i] for i in predicted])


def accuracy_report(labels: Sequence[str], true: Sequence[str], predicted: Sequence[str]) -> dict:
    """Accuracy, per-class accuracy (None for classes with no items) and the confusion matrix."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for truth, guess in zip(true, predicted):
        confusion[index[truth]][index[guess]] += 1
    per_class = {
        label: (confusion[i][i] / sum(confusion[i]) if sum(confusion[i]) else None) for label, i in index.items()
    }
    correct = sum(confusion[i][i] for i in range(len(labels)))
    return {
        "accuracy": correct / max(1, len(true)),
        "per_class_accuracy": per_class,
        "confusion": confusion,
        "num_items": len(true),
    }
