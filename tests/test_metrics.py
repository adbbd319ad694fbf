"""Tests for audiodiff.metrics: signal metrics, distribution metrics, the classifier, evaluation."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import scipy.linalg
import torch

from audiodiff.audio import MelSpec, save_audio
from audiodiff.metrics import (
    EMBEDDINGS,
    AudioClassifier,
    TooFewSamplesError,
    am_score,
    evaluate_classifier,
    evaluate_folders,
    f0_metrics,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
    inception_score,
    labelled_files,
    log_spectral_distance,
    make_embedding,
    mel_cepstral_distortion,
    mel_l1,
    modified_inception_score,
    multi_resolution_stft_distance,
    plot_class_accuracy,
    plot_spectrogram_grid,
    train_classifier,
)
from audiodiff.metrics.distribution import coverage_metrics, memorisation

RATE = 8000
CLIP = 4000  # 0.5 s
SMALL_MEL = MelSpec(sample_rate=RATE, n_fft=256, hop_length=64, win_length=256, n_mels=32, f_max=4000.0)
LABELS = ("high", "low", "noise")


def harmonic_tone(frequency: float, seconds: float = 0.5, rate: int = 16000, harmonics: int = 5) -> torch.Tensor:
    t = torch.arange(round(seconds * rate), dtype=torch.float64) / rate
    tone = sum(torch.sin(2 * math.pi * frequency * k * t) / k for k in range(1, harmonics + 1))
    return (0.3 * tone).float()


def synthetic_clip(label: str, generator: torch.Generator) -> torch.Tensor:
    """One 0.5 s clip at 8 kHz: a low tone (150-400 Hz), a high tone (1.5-3 kHz) or a noise burst."""
    amplitude = 0.1 + 0.5 * float(torch.rand(1, generator=generator))
    if label == "noise":
        start = int(torch.randint(0, CLIP // 2, (1,), generator=generator))
        envelope = torch.zeros(CLIP)
        envelope[start : start + CLIP // 3] = 1.0
        return 0.5 * amplitude * torch.randn(CLIP, generator=generator) * envelope
    low, high = (150.0, 400.0) if label == "low" else (1500.0, 3000.0)
    frequency = low + (high - low) * float(torch.rand(1, generator=generator))
    phase = 2 * math.pi * float(torch.rand(1, generator=generator))
    return amplitude * torch.sin(2 * math.pi * frequency * torch.arange(CLIP) / RATE + phase)


def synthetic_items(per_class: int, seed: int) -> list[tuple[torch.Tensor, str]]:
    generator = torch.Generator().manual_seed(seed)
    return [(synthetic_clip(label, generator), label) for _ in range(per_class) for label in LABELS]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These tensors are tiny; on a shared 2-core machine one thread is several times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def classifier() -> AudioClassifier:
    return train_classifier(
        synthetic_items(12, seed=0),
        mel_spec=SMALL_MEL,
        epochs=10,
        batch_size=12,
        learning_rate=1e-2,
        clip_seconds=CLIP / RATE,
        channels=(8, 16, 32),
        embedding_dim=16,
        seed=0,
    )


# --------------------------------------------------------------------------------------------
# Signal metrics


def test_spectral_metrics_are_zero_for_identical_signals():
    audio = torch.stack([harmonic_tone(220.0), 0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(0))])
    mel_spec = MelSpec()
    for value in (
        multi_resolution_stft_distance(audio, audio.clone()),
        mel_l1(audio, audio.clone(), mel_spec),
        mel_cepstral_distortion(audio, audio.clone(), mel_spec),
        log_spectral_distance(audio, audio.clone()),
    ):
        assert value.shape == (2,)
        assert torch.allclose(value, torch.zeros(2), atol=1e-6)


def test_spectral_metrics_grow_with_added_noise():
    clean = harmonic_tone(220.0)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    noisy = torch.stack([clean + 0.003 * noise, clean + 0.03 * noise])
    reference = clean.expand_as(noisy)
    for distance in (
        multi_resolution_stft_distance(noisy, reference),
        mel_l1(noisy, reference, MelSpec()),
        mel_cepstral_distortion(noisy, reference, MelSpec()),
        log_spectral_distance(noisy, reference),
    ):
        assert 0 < distance[0] < distance[1]


def test_gain_change_moves_lsd_by_its_decibels_but_not_mcd():
    reference = 0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(2))  # no bin near the floor
    louder = 2.0 * reference  # +6.02 dB everywhere: only the level (c0) changes
    assert log_spectral_distance(louder, reference) == pytest.approx(20 * math.log10(2), abs=0.05)
    assert mel_cepstral_distortion(louder, reference, MelSpec()) < 0.05


def test_mismatched_lengths_are_a_clear_error():
    with pytest.raises(ValueError, match="crop both to the same length"):
        mel_l1(torch.zeros(8000), torch.zeros(7999), MelSpec())


def test_f0_metrics_of_identical_tones_are_perfect():
    tone = harmonic_tone(220.0)
    values = f0_metrics(tone, tone.clone(), 16000)
    assert float(values["f0_rmse_cents"]) == pytest.approx(0.0, abs=1e-3)
    assert float(values["vuv_f1"]) == pytest.approx(1.0)


def test_semitone_shift_gives_100_cents_f0_error():
    reference = harmonic_tone(220.0)
    shifted = harmonic_tone(220.0 * 2 ** (1 / 12))
    values = f0_metrics(shifted, reference, 16000)
    assert float(values["f0_rmse_cents"]) == pytest.approx(100.0, abs=12.0)  # pYIN bins are 10 cents
    assert float(values["vuv_f1"]) > 0.9


def test_silence_against_a_tone_has_undefined_f0_error_and_zero_voicing_f1():
    reference = harmonic_tone(220.0)
    values = f0_metrics(torch.zeros_like(reference), reference, 16000)
    assert math.isnan(float(values["f0_rmse_cents"]))
    assert float(values["vuv_f1"]) == 0.0


# --------------------------------------------------------------------------------------------
# Fréchet distance


def test_frechet_distance_of_diagonal_gaussians_matches_closed_form():
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    value = frechet_distance_from_statistics(mean_a, np.diag(var_a), mean_b, np.diag(var_b))
    assert value == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_scipy_sqrtm_for_full_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    cov_a, cov_b = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mean_a, mean_b = rng.normal(size=5), rng.normal(size=5)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert frechet_distance_from_statistics(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_of_samples_approaches_the_gaussians_distance():
    rng = np.random.default_rng(1)
    cov_a = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.5]])
    cov_b = np.array([[2.0, -0.4, 0.1], [-0.4, 1.0, 0.0], [0.1, 0.0, 1.5]])
    mean_a, mean_b = np.zeros(3), np.array([1.0, -0.5, 0.5])
    expected = frechet_distance_from_statistics(mean_a, cov_a, mean_b, cov_b)
    samples_a = rng.multivariate_normal(mean_a, cov_a, size=20000)
    samples_b = rng.multivariate_normal(mean_b, cov_b, size=20000)
    assert frechet_distance(samples_a, samples_b) == pytest.approx(expected, rel=0.05)
    assert frechet_distance(samples_a, samples_a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_survives_singular_covariances():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(50, 2))
    features = np.concatenate([base, base[:, :1]], axis=1)  # third column repeats the first
    value = frechet_distance(features, features + 0.5)
    assert value == pytest.approx(3 * 0.25, rel=1e-6)


def test_frechet_distance_refuses_a_single_clip():
    with pytest.raises(TooFewSamplesError, match="at least 2"):
        frechet_distance(np.zeros((1, 4)), np.ones((10, 4)))


def test_frechet_distance_warns_when_clips_do_not_exceed_dimensions():
    with pytest.warns(UserWarning, match="rank-deficient"):
        feature_statistics(np.random.default_rng(0).normal(size=(4, 8)))


# --------------------------------------------------------------------------------------------
# Classifier scores


def balanced_one_hot(num_classes: int, per_class: int) -> np.ndarray:
    return np.repeat(np.eye(num_classes), per_class, axis=0)


def _sets(seed: int = 0):
    """Real Gaussian features, another real draw, a mode-collapsed set (five points repeated) and a noisy one."""
    rng = np.random.default_rng(seed)
    real, other = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    collapsed = np.repeat(rng.standard_normal((5, 16)), 80, axis=0) + 1e-3 * rng.standard_normal((400, 16))
    return real, other, collapsed, other + 1.5 * rng.standard_normal((400, 16))


def test_coverage_metrics_separate_real_collapsed_and_noisy_sets():
    real, other, collapsed, noisy = _sets()
    honest, copy, blur = (coverage_metrics(real, fake) for fake in (other, collapsed, noisy))
    assert min(honest.values()) > 0.8 and honest["density"] < 1.3
    assert copy["recall"] < 0.05 and copy["coverage"] < 0.15  # a few modes: most of the real set is never made
    assert blur["precision"] < 0.15 and blur["density"] < 0.1  # off the manifold
    assert coverage_metrics(real, real)["precision"] == 1.0 == coverage_metrics(real, real)["coverage"]


def test_coverage_metrics_need_more_points_than_k():
    with pytest.raises(TooFewSamplesError, match="k=5"):
        coverage_metrics(np.zeros((5, 3)), np.zeros((9, 3)))


def test_memorisation_finds_copies_of_training_clips():
    rng = np.random.default_rng(1)
    training, heldout = rng.standard_normal((300, 16)), rng.standard_normal((300, 16))
    novel = memorisation(rng.standard_normal((200, 16)), training, heldout)
    copied = rng.standard_normal((200, 16))
    copied[:50] = training[10:60] + 1e-4  # a quarter replayed from the training set
    replay = memorisation(copied, training, heldout)
    assert novel["copy_share"] < 0.05 and 0.24 <= replay["copy_share"] <= 0.3
    assert all(10 <= train < 60 and generated < 50 for generated, train, _ in replay["closest_pairs"])


def test_inception_score_of_confident_balanced_predictions_is_the_class_count():
    assert inception_score(balanced_one_hot(10, 5)) == pytest.approx(10.0, rel=1e-6)


def test_inception_score_of_one_repeated_prediction_is_one():
    assert inception_score(np.tile([0.7, 0.2, 0.1], (20, 1))) == pytest.approx(1.0)


def test_modified_inception_score_of_one_repeated_prediction_is_one():
    assert modified_inception_score(np.tile([0.7, 0.2, 0.1], (20, 1))) == pytest.approx(1.0)


def test_modified_inception_score_of_soft_confident_predictions_matches_closed_form():
    k, per_class, eps = 4, 5, 0.1
    probs = balanced_one_hot(k, per_class) * (1 - eps - eps / (k - 1)) + eps / (k - 1)
    n = k * per_class
    different_class = (1 - eps - eps / (k - 1)) * math.log((1 - eps) * (k - 1) / eps)  # KL between classes
    fraction_different = (n - per_class) / (n - 1)  # of ordered pairs of distinct clips
    expected = math.exp(fraction_different * different_class)
    assert modified_inception_score(probs) == pytest.approx(expected, rel=1e-6)


def test_am_score_is_zero_for_confident_predictions_matching_the_label_distribution():
    assert am_score(balanced_one_hot(5, 4), np.full(5, 0.2)) == pytest.approx(0.0, abs=1e-6)


def test_am_score_of_uniform_predictions_is_the_log_class_count():
    assert am_score(np.full((8, 4), 0.25), [1, 1, 1, 1]) == pytest.approx(math.log(4))


def test_scores_reject_logits():
    with pytest.raises(ValueError, match="not logits"):
        inception_score(np.array([[2.0, -1.0], [0.5, 0.3]]))


# --------------------------------------------------------------------------------------------
# Classifier


def test_classifier_learns_the_synthetic_classes(classifier):
    report = evaluate_classifier(classifier, synthetic_items(10, seed=1))
    assert report["accuracy"] >= 0.9
    assert set(report["per_class_accuracy"]) == set(LABELS)


def test_classifier_embedding_and_probabilities_have_batch_shapes(classifier):
    audio = torch.stack([clip for clip, _ in synthetic_items(2, seed=2)])
    assert classifier.embed(audio).shape == (6, 16)
    probs = classifier.predict_proba(audio)
    assert probs.shape == (6, 3)
    assert torch.allclose(probs.sum(-1), torch.ones(6))


def test_classifier_round_trips_through_a_directory(classifier, tmp_path):
    classifier.save(tmp_path / "clf")
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["labels"] == list(LABELS) and config["mel_spec"] == SMALL_MEL.to_dict()
    loaded = AudioClassifier.load(tmp_path / "clf")
    audio = torch.stack([clip for clip, _ in synthetic_items(1, seed=3)])
    assert torch.allclose(loaded.predict_proba(audio), classifier.predict_proba(audio), atol=1e-6)
    assert torch.allclose(loaded.label_distribution, torch.full((3,), 1 / 3))


def test_a_top_level_typo_in_a_classifier_config_is_refused_naming_it(classifier, tmp_path):
    classifier.save(tmp_path / "clf")
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    (tmp_path / "clf" / "config.json").write_text(json.dumps({**config, "lables": config["labels"]}))
    with pytest.raises(ValueError, match=r"unknown top-level key\(s\) \['lables'\]; valid keys are \[.*'labels'"):
        AudioClassifier.load(tmp_path / "clf")


def test_loading_a_missing_classifier_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        AudioClassifier.load(tmp_path)


def test_training_is_deterministic_and_leaves_the_global_rng_alone():
    def train() -> torch.Tensor:
        options = dict(mel_spec=SMALL_MEL, epochs=1, batch_size=6, clip_seconds=0.5, channels=(4,), embedding_dim=4)
        return train_classifier(synthetic_items(2, seed=9), seed=3, **options).head[1].weight

    torch.manual_seed(5)
    first = train()
    after_training = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(first, train())
    assert torch.equal(after_training, torch.rand(1))


def test_training_rejects_labels_outside_the_label_list():
    with pytest.raises(ValueError, match="'cat'"):
        train_classifier([(torch.zeros(100), "cat")], labels=["dog", "bird"])


# --------------------------------------------------------------------------------------------
# Embeddings


def test_unknown_embedding_lists_the_valid_names():
    with pytest.raises(ValueError, match="classifier"):
        make_embedding("vggish")


def test_classifier_embedding_needs_a_classifier():
    with pytest.raises(ValueError, match="train-classifier"):
        make_embedding("classifier")


def test_crepe_embedding_without_torchcrepe_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchcrepe", None)  # makes `import torchcrepe` fail
    with pytest.raises(ImportError, match="pip install torchcrepe"):
        make_embedding("crepe")


def test_crepe_embedding_gives_one_vector_per_clip():
    pytest.importorskip("torchcrepe")
    embedding = make_embedding("crepe")
    audio = torch.stack([harmonic_tone(220.0, 0.25), harmonic_tone(880.0, 0.25), torch.zeros(4000)])
    features = embedding(audio, 16000)
    assert features.shape == (3, 256) and torch.isfinite(features).all()
    assert not torch.allclose(features[0], features[1])
    assert set(EMBEDDINGS) == {"classifier", "crepe"}


# --------------------------------------------------------------------------------------------
# evaluate_folders and plots


def write_folder(root, items, noise: float = 0.0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    counts: dict[str, int] = {}
    for audio, label in items:
        index = counts[label] = counts.get(label, -1) + 1
        audio = audio + noise * torch.randn(audio.shape, generator=generator)
        save_audio(root / label / f"{index}.wav", audio, RATE)
    return root


def test_evaluate_folders_end_to_end(classifier, tmp_path):
    items = synthetic_items(6, seed=4)  # 18 clips: more than the 16 embedding dimensions
    reference = write_folder(tmp_path / "reference", items)
    generated = write_folder(tmp_path / "generated", items, noise=0.01)
    plots = tmp_path / "plots"
    result = evaluate_folders(generated, reference, classifier=classifier, fmin=100.0, fmax=1000.0, plot_dir=plots)
    json.dumps(result, allow_nan=False)
    assert result["generated"]["num_clips"] == 18 and result["clip_seconds"] == CLIP / RATE
    assert result["frechet"]["classifier"] >= 0
    scores = result["classifier"]["generated"]
    assert 1.0 <= scores["inception_score"] <= 3.0 and scores["accuracy"] >= 0.9
    assert result["signal"]["num_pairs"] == 18 and result["signal"]["mr_stft"] > 0
    assert {"mel_l1", "mcd_db", "lsd_db", "f0_rmse_cents", "vuv_f1"} <= set(result["signal"])
    assert len(result["plots"]) == 3 and all(open(path, "rb").read(4) == b"\x89PNG" for path in result["plots"])


def test_evaluate_folders_without_a_classifier_uses_crepe_when_installed(tmp_path):
    pytest.importorskip("torchcrepe")
    items = synthetic_items(2, seed=10)
    reference = write_folder(tmp_path / "reference", items)
    generated = write_folder(tmp_path / "generated", items, noise=0.01)
    with pytest.warns(UserWarning, match="rank-deficient"):  # 6 clips, 256 dimensions
        result = evaluate_folders(generated, reference, f0=False)
    assert set(result["frechet"]) == {"crepe"} and result["frechet"]["crepe"] > 0
    assert result["classifier"] is None and result["signal"]["num_pairs"] == 6


def test_evaluate_folders_rejects_an_empty_folder(tmp_path):
    write_folder(tmp_path / "reference", synthetic_items(1, seed=5))
    (tmp_path / "generated").mkdir()
    with pytest.raises(FileNotFoundError, match="no audio files"):
        evaluate_folders(tmp_path / "generated", tmp_path / "reference")


def test_evaluate_folders_rejects_labels_the_classifier_does_not_know(classifier, tmp_path):
    write_folder(tmp_path / "reference", synthetic_items(1, seed=5))
    write_folder(tmp_path / "generated", [(torch.zeros(CLIP), "seven")])
    with pytest.raises(ValueError, match="'seven'"):
        evaluate_folders(tmp_path / "generated", tmp_path / "reference", classifier=classifier)


def test_evaluate_folders_needs_two_clips_for_a_frechet_distance(classifier, tmp_path):
    write_folder(tmp_path / "reference", synthetic_items(1, seed=5))
    write_folder(tmp_path / "generated", [(torch.zeros(CLIP), "low")])
    with pytest.raises(TooFewSamplesError, match="at least 2"):
        evaluate_folders(tmp_path / "generated", tmp_path / "reference", classifier=classifier)


def test_evaluate_folders_without_anything_to_compute_says_what_to_pass(tmp_path):
    write_folder(tmp_path / "reference", synthetic_items(1, seed=5))
    write_folder(tmp_path / "generated", synthetic_items(1, seed=6)[:2])
    with pytest.raises(ValueError, match="nothing to compute"):
        evaluate_folders(tmp_path / "generated", tmp_path / "reference", embeddings=[])


def test_labelled_files_reads_label_subfolders(tmp_path):
    write_folder(tmp_path / "data", synthetic_items(2, seed=7))
    items = labelled_files(tmp_path / "data", labels=["low", "noise"])
    assert sorted(label for _, label in items) == ["low", "low", "noise", "noise"]


def test_plots_write_png_files(tmp_path):
    clips = torch.stack([clip for clip, _ in synthetic_items(1, seed=8)])
    grid = plot_spectrogram_grid(clips, tmp_path / "grid.png", mel_spec=SMALL_MEL, titles=list(LABELS))
    bars = plot_class_accuracy({"low": 1.0, "high": 0.5, "noise": None}, tmp_path / "bars.png")
    assert grid.read_bytes()[:4] == bars.read_bytes()[:4] == b"\x89PNG"
