"""Inversion returns the noise that regenerates a clip: exactly on Gaussian data, where the
probability-flow ODE is known, then through the pipeline (generate(noise=...), edit, vary)."""

import pytest
import torch

from audiodiff.diffusion.inversion import inversion_angles, invert
from audiodiff.diffusion.likelihood import gaussian_v_model
from audiodiff.diffusion.samplers import ddim
from audiodiff.pipeline import Pipeline, build_model
from audiodiff.request import RequestError
from tests.util import tiny_config


def gaussian_case(dim: int = 6, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    mean = torch.randn(dim, generator=generator, dtype=torch.float64)
    root = torch.randn(dim, dim, generator=generator, dtype=torch.float64) * 0.4
    covariance = root @ root.T + 0.05 * torch.eye(dim, dtype=torch.float64)
    return gaussian_v_model(mean, covariance), torch.randn(8, dim, generator=generator, dtype=torch.float64)


def test_inversion_of_the_exact_ode_returns_the_noise_it_came_from():
    model, noise = gaussian_case()
    steps = 32
    clean = ddim(model, noise, inversion_angles(steps).flip(0))
    recovered = invert(model, clean, inversion_angles(steps), iterations=6)
    plain = invert(model, clean, inversion_angles(steps), iterations=0)
    assert torch.allclose(recovered, noise, atol=1e-6)
    error, plain_error = (recovered - noise).abs().max(), (plain - noise).abs().max()
    assert plain_error > 100 * error  # plain DDIM inversion is only first-order close


def test_more_steps_bring_plain_ddim_inversion_closer():
    model, noise = gaussian_case(seed=1)
    errors = []
    for steps in (8, 32, 128):
        clean = ddim(model, noise, inversion_angles(steps).flip(0))
        errors.append(float((invert(model, clean, inversion_angles(steps), iterations=0) - noise).abs().max()))
    assert errors[0] > errors[1] > errors[2]


def test_inversion_refuses_a_grid_that_does_not_rise():
    model, noise = gaussian_case()
    with pytest.raises(ValueError, match="increase"):
        invert(model, noise, inversion_angles(4).flip(0))


@pytest.fixture
def wave_pipe(tmp_path):
    config = tiny_config(tmp_path, tmp_path / "run", dims=1, conditioning={"labels": ["a", "b"]})
    torch.manual_seed(0)
    model = build_model(config)
    for param in model.parameters():
        torch.nn.init.normal_(param, std=0.02)
    return Pipeline(model, config)


def test_generate_from_inverted_noise_makes_the_clip_again(wave_pipe):
    clip = wave_pipe.generate(label="a", steps=8, seed=3, sampler="ddim").audio
    noise = wave_pipe.invert(clip, steps=8, sample_rate=16000, label="a")
    again = wave_pipe.generate(noise=noise, sampler="ddim", steps=8, label="a", duration=clip.shape[-1] / 16000)
    redrawn = wave_pipe.vary(clip, strength=1.0, sample_rate=16000, label="a", steps=8, seed=4)
    error = (again.audio - clip).abs().mean()
    assert error < 1e-3 * clip.abs().mean() and error < 0.01 * (redrawn.audio - clip).abs().mean()


def test_edit_with_the_same_conditions_returns_the_clip_and_with_others_changes_it(wave_pipe):
    clip = wave_pipe.generate(label="a", steps=8, seed=5, sampler="ddim", guidance=1.0).audio
    same = wave_pipe.edit(clip, {"label": "a"}, {"label": "a"}, steps=8, sample_rate=16000, guidance=1.0)
    other = wave_pipe.edit(clip, {"label": "a"}, {"label": "b"}, steps=8, sample_rate=16000, guidance=3.0)
    assert (same.audio - clip).abs().mean() < 1e-3 * clip.abs().mean()
    assert (other.audio - clip).abs().mean() > 10 * (same.audio - clip).abs().mean()
    assert other.settings.conditions == {"label": "b"} and other.settings.sampler == "ddim"


def test_edit_away_from_source_guides_along_the_change_only(wave_pipe):
    """With the source as the negative, guidance scales only what differs between source and
    target: asked for no change, any guidance gives the clip back (plain guidance would not)."""
    clip = wave_pipe.generate(label="a", steps=8, seed=5, sampler="ddim", guidance=1.0).audio
    kwargs = {"steps": 8, "sample_rate": 16000, "guidance": 3.0}
    away = wave_pipe.edit(clip, {"label": "a"}, {"label": "a"}, away_from_source=True, **kwargs)
    plain = wave_pipe.edit(clip, {"label": "a"}, {"label": "a"}, **kwargs)
    assert (away.audio - clip).abs().mean() < 1e-3 * clip.abs().mean()
    assert (plain.audio - clip).abs().mean() > 10 * (away.audio - clip).abs().mean()
    other = wave_pipe.edit(clip, {"label": "a"}, {"label": "b"}, away_from_source=True, **kwargs)
    assert other.settings.negatives == {"label": "a"} and other.settings.conditions == {"label": "b"}


def test_vary_by_inversion_moves_away_from_the_input_with_strength(wave_pipe):
    clip = wave_pipe.generate(label="a", steps=8, seed=6, sampler="ddim").audio
    distances = [
        float((wave_pipe.vary(clip, strength, 16000, mode="inversion", label="a", steps=8).audio - clip).abs().mean())
        for strength in (0.1, 0.5, 1.0)
    ]
    assert distances[0] < distances[1] < distances[2]


def test_bad_inversion_options_are_clear_errors(wave_pipe):
    clip = torch.zeros(1, 4000)
    with pytest.raises(RequestError, match="strength=0"):
        wave_pipe.invert(clip, sample_rate=16000, strength=0)
    with pytest.raises(RequestError, match="mode='sdedit'"):
        wave_pipe.vary(clip, 0.5, 16000, mode="sdedit")
    with pytest.raises(RequestError, match="noise has shape"):
        wave_pipe.generate(noise=torch.zeros(1, 1, 10), steps=2)
    with pytest.raises(RequestError, match="at most"):
        wave_pipe.invert(torch.zeros(1, 16000 * 5), sample_rate=16000)
