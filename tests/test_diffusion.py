import math

import pytest
import torch

from audiodiff.diffusion.objective import alpha_sigma, angle_from_t, angles_for_steps, noised, predict_x0_eps, v_target
from audiodiff.diffusion.samplers import SAMPLERS, get_sampler, guided

MU, STD = 0.7, 0.3
DETERMINISTIC = ["ddim", "euler", "heun", "dpmpp_2m"]


def gaussian_model(x, theta, cond):
    """The exact v of data distributed N(MU, STD^2) in every dimension."""
    alpha, sigma = alpha_sigma(theta.double())
    alpha, sigma = alpha[:, None], sigma[:, None]
    x0 = MU + alpha * STD**2 / (alpha**2 * STD**2 + sigma**2) * (x - alpha * MU)
    return (alpha * x - x0) / sigma


def point_mass_model(x, theta, cond):
    alpha, sigma = alpha_sigma(theta.double())
    return (alpha[:, None] * x - MU) / sigma[:, None]


def test_v_objective_identities():
    x, noise = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)
    theta = torch.rand(8, dtype=torch.float64) * math.pi / 2
    x_t = noised(x, theta, noise)
    x0, eps = predict_x0_eps(x_t, theta, v_target(x, theta, noise))
    assert torch.allclose(x0, x) and torch.allclose(eps, noise)


def test_shift_moves_noise_levels_up_and_keeps_the_ends():
    t = torch.tensor([0.0, 0.5, 1.0])
    shifted = angle_from_t(t, 4.0)
    assert shifted[0] == 0 and math.isclose(shifted[2].item(), math.pi / 2, rel_tol=1e-6)
    assert shifted[1] > angle_from_t(t, 1.0)[1]


@pytest.mark.parametrize("name", DETERMINISTIC + ["ddpm"])
def test_sampler_lands_on_a_point_mass(name):
    eps = torch.randn(64, 3, dtype=torch.float64)
    errors = [
        (get_sampler(name)(point_mass_model, eps.clone(), angles_for_steps(n)) - MU).abs().max().item() for n in (4, 64)
    ]
    assert errors[1] < 1e-2
    assert errors[1] <= errors[0] + 1e-12


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_sampler_error_shrinks_with_steps_on_a_gaussian(name):
    """The probability-flow ODE maps noise e to MU + STD * e exactly for Gaussian data."""
    eps = torch.randn(256, 2, dtype=torch.float64)
    target = MU + STD * eps
    errors = [
        (get_sampler(name)(gaussian_model, eps.clone(), angles_for_steps(n)) - target).abs().mean().item()
        for n in (4, 16, 64)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.02


def test_ancestral_sampler_matches_gaussian_statistics():
    eps = torch.randn(4000, 1, dtype=torch.float64)
    out = get_sampler("ddpm")(gaussian_model, eps, angles_for_steps(100), noise=lambda like: torch.randn_like(like))
    assert abs(out.mean().item() - MU) < 0.03 and abs(out.std().item() - STD) < 0.03


def test_callback_sees_every_step():
    seen = []
    get_sampler("dpmpp_2m")(
        point_mass_model, torch.randn(2, 2, dtype=torch.float64), angles_for_steps(7), callback=seen.append
    )
    assert [info["step"] for info in seen] == list(range(7))


def test_one_step_and_a_thousand_steps_work():
    for steps in (1, 1000):
        out = get_sampler("ddim")(point_mass_model, torch.randn(2, 2, dtype=torch.float64), angles_for_steps(steps))
        assert torch.allclose(out, torch.full_like(out, MU))


def test_unknown_sampler_lists_the_valid_ones():
    with pytest.raises(ValueError, match="dpmpp_2m"):
        get_sampler("nope")


def _conditional_model(x, theta, cond):
    """v pulls towards +1 for label 1, -1 for label 0 and 0 for the null label (-1)."""
    label = cond.get("label", torch.full((x.shape[0],), -1))
    target = torch.where(label < 0, 0.0, label.double() * 2 - 1)[:, None]
    return point_mass_model(x, theta, {}) + (MU - target)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_guidance_one_is_conditional_and_zero_is_unconditional(name):
    sampler = get_sampler(name)
    x = torch.randn(4, 3, dtype=torch.float64)
    cond = {"label": torch.tensor([0, 1, 0, 1])}
    angles = angles_for_steps(6)
    conditional = sampler(_conditional_model, x.clone(), angles, cond)
    unconditional = sampler(_conditional_model, x.clone(), angles, {})
    assert torch.allclose(sampler(guided(_conditional_model, 1.0), x.clone(), angles, cond), conditional)
    assert torch.allclose(sampler(guided(_conditional_model, 0.0), x.clone(), angles, cond), unconditional)
    strong = sampler(guided(_conditional_model, 3.0), x.clone(), angles, cond)
    assert not torch.allclose(strong, conditional)


def test_guidance_batches_conditional_and_unconditional_calls():
    calls = []

    def model(x, theta, cond):
        calls.append(x.shape[0])
        return _conditional_model(x, theta, cond)

    get_sampler("ddim")(
        guided(model, 2.0),
        torch.randn(3, 2, dtype=torch.float64),
        angles_for_steps(2),
        {"label": torch.tensor([0, 1, 1])},
    )
    assert calls == [6, 6]


def _two_condition_model(x, theta, cond):
    """v moved by a label and by a pitch, each on its own dimension (absent: null)."""
    v = point_mass_model(x, theta, {}).clone()
    for dim, name in enumerate(("label", "pitch")):
        if name in cond:
            v[:, dim] += cond[name].double() + 1
    return v


def test_composed_guidance_interval_bounds_only_the_extra_push():
    x = torch.randn(2, 3, dtype=torch.float64)
    cond, rest = {"label": torch.tensor([1, 2]), "pitch": torch.tensor([3, 4])}, {"pitch": torch.tensor([3, 4])}
    v_cond, v_rest, v_null = (
        _two_condition_model(x, torch.full((2,), t), c) for t, c in [(1.2, cond), (1.2, rest), (1.2, {})]
    )
    model = guided(_two_condition_model, 3.0, rest, interval=(0.5, 1.0), rest_scale=2.0)
    inside, outside = torch.full((2,), 1.2), torch.full((2,), 0.3)  # levels 0.76 and 0.19
    assert torch.allclose(model(x, inside, cond), v_null + 2 * (v_rest - v_null) + 3 * (v_cond - v_rest))
    v_cond, v_null = _two_condition_model(x, outside, cond), _two_condition_model(x, outside, {})
    assert torch.allclose(model(x, outside, cond), v_null + 2 * (v_cond - v_null))  # everything at the rest's scale
    all_named = guided(
        _two_condition_model, 3.0, {}, interval=(0.5, 1.0), rest_scale=2.0
    )  # guide= names every asked condition
    assert torch.allclose(all_named(x, outside, cond), v_null + 2 * (v_cond - v_null))
    unguided_rest = guided(_two_condition_model, 3.0, rest, interval=(0.5, 1.0))
    assert torch.allclose(
        unguided_rest(x, outside, cond), v_cond
    )  # rest at 1: the conditional prediction, as plain guidance


def test_samplers_registry_has_the_documented_names():
    assert {"ddim", "ddpm", "euler", "heun", "dpmpp_2m"} <= set(SAMPLERS)


# -- rectified flow: the same samplers through (x0, eps)


def gaussian_flow(x, t, cond):
    """The exact flow velocity u = E[eps - x | x_t] of N(MU, STD^2) data on x_t = (1 - t) x + t eps."""
    t = t.double()[:, None]
    variance = (1 - t) ** 2 * STD**2 + t**2
    centred = x - (1 - t) * MU
    x0 = MU + (1 - t) * STD**2 / variance * centred
    eps = t / variance * centred
    return eps - x0


def test_flow_network_seen_as_v_is_the_exact_v():
    from audiodiff.diffusion.objective import flow_as_v

    x = torch.randn(16, 3, dtype=torch.float64)
    theta = torch.linspace(0.01, math.pi / 2 - 0.01, 16, dtype=torch.float64)
    assert torch.allclose(flow_as_v(gaussian_flow)(x, theta, {}), gaussian_model(x, theta, {}), atol=1e-10)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_samplers_take_a_flow_model_to_the_gaussian(name):
    from audiodiff.diffusion.objective import flow_as_v

    eps = torch.randn(256, 2, dtype=torch.float64)
    out = get_sampler(name)(flow_as_v(gaussian_flow), eps.clone(), angles_for_steps(64))
    assert (out - (MU + STD * eps)).abs().mean() < 0.02


def test_flow_loss_is_lowest_at_the_exact_velocity():
    from audiodiff.diffusion.objective import flow_loss

    x = MU + STD * torch.randn(20000, 2, dtype=torch.float64)

    def loss(model):
        return flow_loss(lambda x_t, t, cond: model(x_t, t, cond), x, generator=torch.Generator().manual_seed(0)).item()

    exact = loss(gaussian_flow)
    for bias in (0.05, -0.05):
        assert loss(lambda x_t, t, cond, b=bias: gaussian_flow(x_t, t, cond) + b) > exact
    assert loss(lambda x_t, t, cond: 1.1 * gaussian_flow(x_t, t, cond)) > exact
