"""Likelihood from the probability-flow ODE: checked where the answer is exact (Gaussian data and
its exact v-predictor), then on a trained model through the Pipeline and the CLI."""

import math

import pytest
import torch

from audiodiff.diffusion.likelihood import gaussian_log_likelihood, gaussian_v_model, ode_log_likelihood
from audiodiff.diffusion.objective import angle_from_t

DIM = 8


def gaussian_case(seed: int = 0, scale: float = 1.0):
    """Data N(mean, Σ) with a full covariance, and the exact v-predictor for data N(mean, scale² Σ)
    (scale 1: the true model)."""
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=generator, dtype=torch.float64))
    covariance = q @ torch.diag(torch.linspace(0.02, 1.5, DIM, dtype=torch.float64)) @ q.T
    mean = torch.randn(DIM, generator=generator, dtype=torch.float64)
    model = gaussian_v_model(mean, scale**2 * covariance)
    data = mean + torch.randn(300, DIM, generator=generator, dtype=torch.float64) @ torch.linalg.cholesky(covariance).T
    return model, data, mean, covariance


def test_ode_likelihood_of_gaussian_data_matches_the_exact_value_within_two_standard_errors():
    model, data, mean, covariance = gaussian_case()
    out = ode_log_likelihood(model, data, steps=16, probes=1, generator=torch.Generator().manual_seed(1))
    c, s = (float(f(angle_from_t(torch.tensor(1e-3, dtype=torch.float64)))) for f in (torch.cos, torch.sin))
    noisy = c**2 * covariance + s**2 * torch.eye(DIM, dtype=torch.float64)
    truth = torch.distributions.MultivariateNormal(c * mean, noisy).log_prob(data)
    error = out["log_likelihood"] - truth
    standard_error = out["log_likelihood"].std() / math.sqrt(len(error))  # what a user would report
    assert abs(error.mean()) < 2 * standard_error, (error.mean(), standard_error)
    assert error.std() > 0  # the probes are random: the check is not of an exact divergence
    bits = -truth / (DIM * math.log(2))
    assert torch.allclose(out["nll_bits_per_dim"].mean(), bits.mean(), atol=2 * standard_error / (DIM * math.log(2)))


def test_a_wrong_model_scores_the_data_worse_by_many_standard_errors():
    true_model, data, _, _ = gaussian_case()
    wrong_model, _, _, _ = gaussian_case(scale=1.6)
    right = ode_log_likelihood(true_model, data, steps=8, generator=torch.Generator().manual_seed(1))["log_likelihood"]
    wrong = ode_log_likelihood(wrong_model, data, steps=8, generator=torch.Generator().manual_seed(1))["log_likelihood"]
    assert (right - wrong).mean() > 10 * (right - wrong).std() / math.sqrt(len(data))


def test_gaussian_log_likelihood_is_the_textbook_density():
    x = torch.zeros(1, 3)
    assert float(gaussian_log_likelihood(x, 0.0, 1.0)) == pytest.approx(-1.5 * math.log(2 * math.pi))


def test_bad_settings_are_refused():
    model, data, _, _ = gaussian_case()
    with pytest.raises(ValueError, match="steps"):
        ode_log_likelihood(model, data, steps=0)
    with pytest.raises(ValueError, match="t_min"):
        ode_log_likelihood(model, data, t_min=0.0)
