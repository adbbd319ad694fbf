"""Distribution metrics: how a set of generated clips compares with a set of real ones.

Inputs are whole sets, so each function returns one float:
features are `[num_clips, dim]` and class probabilities `[num_clips, num_classes]`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from audiodiff.errors import UserError

__all__ = [
    "COVERAGE_K",
    "MIN_FRECHET_CLIPS",
    "TooFewSamplesError",
    "am_score",
    "coverage_metrics",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "inception_score",
    "memorisation",
    "modified_inception_score",
    "within_spread",
]

_EPS = 1e-12  # probability floor before logs
MIN_FRECHET_CLIPS = 2  # per set; a number worth reporting needs more clips than embedding dimensions
COVERAGE_K = 5  # nearest neighbours for precision/recall/density/coverage (Naeem et al. 2020's choice)


class TooFewSamplesError(UserError, ValueError):
    """A set too small for the statistic asked of it."""


def _as_matrix(values, name: str) -> np.ndarray:
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected [num_clips, dim], got shape {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or Inf")
    return array


# --------------------------------------------------------------------------------------------
# Fréchet distance


def feature_statistics(features, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean `[dim]` and covariance `[dim, dim]` of `[num_clips, dim]` features.

    Needs at least 2 clips; warns when there are no more clips than dimensions, since the
    covariance is then rank-deficient and the distance biased.
    """
    features = _as_matrix(features, name)
    count, dim = features.shape
    if count < MIN_FRECHET_CLIPS:
        raise TooFewSamplesError(
            f"{name}: {count} clip(s); a Fréchet distance needs at least {MIN_FRECHET_CLIPS} per set, "
            f"and ideally more than the feature dimension ({dim})"
        )
    if count <= dim:
        warnings.warn(
            f"{name}: {count} clips for {dim}-dimensional features; the covariance is rank-deficient "
            f"and the Fréchet distance biased; use more than {dim} clips for numbers you report",
            stacklevel=2,
        )
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(dim, dim)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; tiny negative eigenvalues
    from round-off are clipped to zero."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance_from_statistics(
    mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray
) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2): the Fréchet (2-Wasserstein)
    distance between two Gaussians (Dowson & Landau 1982; FID, Heusel et al. 2017).

    tr((S_a S_b)^1/2) is computed as the trace of the symmetric form above from eigenvalues,
    which stays real and finite for singular or near-singular covariances.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    if mean_a.shape != mean_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != (mean_a.size,) * 2:
        raise ValueError(
            f"statistics do not match: means {mean_a.shape} and {mean_b.shape}, "
            f"covariances {cov_a.shape} and {cov_b.shape}; both sets need the same feature dimension"
        )
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    value = float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)
    return max(value, 0.0)


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets `[n, dim]` and `[m, dim]`
    (the FID/FAD recipe with any embedding). 0 for identical sets; lower is closer."""
    features_a = _as_matrix(features_a, "features_a")
    features_b = _as_matrix(features_b, "features_b")
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(
            f"feature dimensions differ: {features_a.shape[1]} vs {features_b.shape[1]}; "
            "embed both sets with the same embedding"
        )
    return frechet_distance_from_statistics(
        *feature_statistics(features_a, "features_a"), *feature_statistics(features_b, "features_b")
    )


# --------------------------------------------------------------------------------------------
# Fidelity and coverage from nearest neighbours (precision/recall: Kynkäänniemi et al. 2019;
# density/coverage: Naeem et al. 2020)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances `[len(a), len(b)]`."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0.0, None))


def within_spread(features, groups: list) -> float:
    """Mean distance between rows of `features` `[n, dim]` in the same group (`groups`: one key a
    row, e.g. what each clip was asked for), averaged over the groups of two or more rows; 0 where
    there is none. A set that makes one output per request has no spread."""
    features = _as_matrix(features, "features")
    spreads = []
    for group in dict.fromkeys(groups):
        rows = features[[index for index, g in enumerate(groups) if g == group]]
        if len(rows) > 1:
            # differences, not _distances' expansion: identical rows must come out exactly 0 apart
            distances = np.sqrt(((rows[:, None] - rows[None]) ** 2).sum(-1))
            spreads.append(distances.sum() / (len(rows) * (len(rows) - 1)))
    return float(np.mean(spreads)) if spreads else 0.0


def _kth_neighbour_radius(features: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest neighbour in its own set (itself excluded)."""
    distances = _distances(features, features)
    return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself


def coverage_metrics(real_features, fake_features, k: int = COVERAGE_K) -> dict[str, float]:
    """Precision, recall, density and coverage of fake features `[m, dim]` against real ones `[n, dim]`.

    Each real point owns a ball reaching its k-th nearest real neighbour (the real manifold), each
    fake point one reaching its k-th nearest fake neighbour.
    - precision: share of fake points inside some real ball (fidelity: no implausible clips);
    - recall: share of real points inside some fake ball (diversity: every kind of real clip is made);
    - density: fake-in-real-ball memberships per fake point, divided by k (about 1 for matching
      sets; below 1 when fakes sit off the manifold, above when they crowd its dense parts);
    - coverage: share of real balls holding at least one fake point (like recall, but robust to
      fake outliers, which inflate the fake balls that recall counts on).
    A mode-collapsed set (a few clips repeated) has low recall and coverage; a noisy one low
    precision and density. Needs more than k points in each set.
    """
    real, fake = _as_matrix(real_features, "real_features"), _as_matrix(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}; embed both sets alike")
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    for name, features in (("real", real), ("fake", fake)):
        if len(features) <= k:
            raise TooFewSamplesError(
                f"{name} features: {len(features)} point(s); nearest-neighbour balls with k={k} need more than {k}"
            )
    real_radius, fake_radius = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    between = _distances(real, fake)  # [n, m]
    inside_real = between <= real_radius[:, None]  # fake j inside real ball i
    inside_fake = between <= fake_radius[None, :]  # real i inside fake ball j
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float(inside_fake.any(axis=1).mean()),
        "density": float(inside_real.sum() / (k * fake.shape[0])),
        "coverage": float(inside_real.any(axis=1).mean()),
    }


def memorisation(
    generated_features, training_features, heldout_features, percentile: float = 1.0, pairs: int = 8
) -> dict:
    """How close generated clips come to training clips, against how close real held-out clips do.

    For each generated clip, the distance to its nearest training clip; the same for each held-out
    real clip (clips the model never saw: the distances that honest novelty gives). Returns
    the threshold (the `percentile`-th percentile of the held-out distances), `copy_share` (the
    share of generated clips nearer a training clip than that; about percentile/100 for a model
    that does not copy, near 1 for one that replays its training set), both sets' median nearest
    distances, and the `pairs` closest (generated index, training index, distance), closest first.
    """
    generated = _as_matrix(generated_features, "generated_features")
    training = _as_matrix(training_features, "training_features")
    heldout = _as_matrix(heldout_features, "heldout_features")
    if not (generated.shape[1] == training.shape[1] == heldout.shape[1]):
        raise ValueError("feature dimensions differ; embed all three sets alike")
    if len(heldout) < 2 or len(training) < 1 or len(generated) < 1:
        raise TooFewSamplesError("memorisation needs generated and training clips and at least 2 held-out clips")
    to_training = _distances(generated, training)
    nearest, nearest_index = to_training.min(axis=1), to_training.argmin(axis=1)
    honest = _distances(heldout, training).min(axis=1)
    threshold = float(np.percentile(honest, percentile))
    order = np.argsort(nearest)[:pairs]
    return {
        "percentile": percentile,
        "threshold": threshold,
        "copy_share": float((nearest < threshold).mean()),
        "generated_median_distance": float(np.median(nearest)),
        "heldout_median_distance": float(np.median(honest)),
        "closest_pairs": [(int(i), int(nearest_index[i]), float(nearest[i])) for i in order],
        "generated_distances": nearest.tolist(),
        "heldout_distances": honest.tolist(),
    }


# --------------------------------------------------------------------------------------------
# Classifier scores (SC09 protocol: Donahue et al. 2019 WaveGAN; Kong et al. 2021 DiffWave)


def _probabilities(probs, name: str = "probs") -> np.ndarray:
    probs = _as_matrix(probs, name)
    if probs.shape[0] < 1:
        raise TooFewSamplesError(f"{name}: no clips; the score needs at least 1")
    if (probs < -1e-6).any() or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(f"{name}: rows must be probability distributions (softmax outputs), not logits")
    probs = np.clip(probs, _EPS, None)
    return probs / probs.sum(axis=1, keepdims=True)


def _entropy(probs: np.ndarray) -> np.ndarray:
    return -(probs * np.log(probs)).sum(axis=-1)


def inception_score(probs, num_splits: int = 1) -> float:
    """IS = exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016), from class probabilities
    `[num_clips, num_classes]`; between 1 and num_classes, higher is better.

    `num_splits` > 1 averages the score over that many equal splits, as in the original
    recipe (which reports 10); 1 uses the whole set.
    """
    probs = _probabilities(probs)
    if not 1 <= num_splits <= len(probs):
        raise ValueError(f"num_splits={num_splits}; use 1..{len(probs)} (the number of clips)")
    scores = []
    for part in np.array_split(probs, num_splits):
        marginal = part.mean(axis=0)
        divergence = (part * (np.log(part) - np.log(marginal))).sum(axis=1).mean()
        scores.append(math.exp(divergence))
    return float(np.mean(scores))


def modified_inception_score(probs) -> float:
    """mIS = exp(E_{x,x'} KL(p(y|x) || p(y|x'))) (Gurumurthy et al. 2017, DeLiGAN), over all
    ordered pairs of distinct clips; rewards confident predictions that differ within a class.
    Needs at least 2 clips; 1 when every prediction is the same."""
    probs = _probabilities(probs)
    count = len(probs)
    if count < 2:
        raise TooFewSamplesError("modified_inception_score: needs at least 2 clips (it averages over pairs)")
    log_probs = np.log(probs)
    self_term = (probs * log_probs).sum(axis=1)  # sum_y p_i log p_i
    cross = probs @ log_probs.T  # [i, j] = sum_y p_i log p_j
    divergence = self_term[:, None] - cross  # KL(p_i || p_j); zero on the diagonal
    return float(math.exp(divergence.sum() / (count * (count - 1))))


def am_score(probs, reference_distribution) -> float:
    """AM score = KL(p*(y) || p(y)) + E_x H(p(y|x)) (Zhou et al. 2018, "Activation Maximization
    GANs"), with p(y) the mean prediction on generated clips and p* `[num_classes]` the class
    distribution of real data: the classifier's mean prediction on real clips, as in the
    authors' code and the SC09 benchmarks (Kong et al. 2021), or the training label
    frequencies. 0 is ideal; lower is better."""
    probs = _probabilities(probs)
    target = np.asarray(reference_distribution, dtype=np.float64).reshape(-1)
    if target.shape[0] != probs.shape[1] or (target < 0).any() or target.sum() <= 0:
        raise ValueError(
            f"reference_distribution: expected {probs.shape[1]} non-negative class weights, got {target.tolist()[:10]}"
        )
    target = target / target.sum()
    marginal = probs.mean(axis=0)
    mask = target > 0
    divergence = float((target[mask] * (np.log(target[mask]) - np.log(marginal[mask]))).sum())
    return divergence + float(_entropy(probs).mean())
