"""Distribution metrics: how a set of generated clips compares with a set of real ones.

Inputs are whole sets, so each function returns one float:
features are `[num_clips, dim]` and class probabilities `[num_clips, num_classes]`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

__all__ = [
    "TooFewSamplesError", "am_score", "feature_statistics", "frechet_distance", "frechet_distance_from_statistics",
    "inception_score", "modified_inception_score"
]

_EPS = 1e-12  # probability floor before logs


class TooFewSamplesError(ValueError):
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
    if count < 2:
        raise TooFewSamplesError(
            f"{name}: {count} clip(s); a Fréchet distance needs at least 2 per set, "
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
            f"reference_distribution: expected {probs.shape[1]} non-negative class weights, "
            f"got {target.tolist()[:10]}"
        )
    target = target / target.sum()
    marginal = probs.mean(axis=0)
    mask = target > 0
    divergence = float((target[mask] * (np.log(target[mask]) - np.log(marginal[mask]))).sum())
    return divergence + float(_entropy(probs).mean())
