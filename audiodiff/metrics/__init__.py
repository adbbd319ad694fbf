"""Metrics for generated audio.

- Signal metrics (`signal`): estimate vs reference clip by clip, `[..., samples]` -> `[...]`:
  multi-resolution STFT distance, mel L1, mel-cepstral distortion (dB), log-spectral distance
  (dB), F0 RMSE (cents) and voiced/unvoiced F1.
- Distribution metrics (`distribution`): one number per pair of sets: Fréchet distance of
  embeddings, Inception Score, modified IS, AM score.
- `AudioClassifier` / `train_classifier`: the SC09-protocol classifier behind the scores;
  `EMBEDDINGS` names the feature extractors for Fréchet distances.
- `evaluate_folders` (`scoring`): all of the above on two sets of audio, as a JSON-able dict.
- `audiodiff eval` is built of `sets` (clip sets: folders, manifest splits, a checkpoint's samples,
  the floor's draw), `scoring` (the figures, the model beside the floor), `report` (metrics.json,
  report.md, plots) and `evaluation` (its rules: split defaults, the floor; the run).
"""

from audiodiff.metrics.classifier import AudioClassifier, accuracy_report, evaluate_classifier, train_classifier
from audiodiff.metrics.distribution import (
    TooFewSamplesError,
    am_score,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
    inception_score,
    modified_inception_score,
)
from audiodiff.metrics.embeddings import EMBEDDINGS, ClassifierEmbedding, CrepeEmbedding, make_embedding
from audiodiff.metrics.plots import plot_class_accuracy, plot_spectrogram_grid
from audiodiff.metrics.scoring import evaluate_folders
from audiodiff.metrics.sets import find_audio, labelled_files
from audiodiff.metrics.signal import (
    estimate_f0,
    f0_metrics,
    f0_rmse_cents,
    log_spectral_distance,
    mel_cepstral_distortion,
    mel_l1,
    multi_resolution_stft_distance,
    voicing_f1,
)

__all__ = [
    "EMBEDDINGS",
    "AudioClassifier",
    "ClassifierEmbedding",
    "CrepeEmbedding",
    "TooFewSamplesError",
    "accuracy_report",
    "am_score",
    "estimate_f0",
    "evaluate_classifier",
    "evaluate_folders",
    "f0_metrics",
    "f0_rmse_cents",
    "feature_statistics",
    "find_audio",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "inception_score",
    "labelled_files",
    "log_spectral_distance",
    "make_embedding",
    "mel_cepstral_distortion",
    "mel_l1",
    "modified_inception_score",
    "multi_resolution_stft_distance",
    "plot_class_accuracy",
    "plot_spectrogram_grid",
    "train_classifier",
    "voicing_f1",
]
