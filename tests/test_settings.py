"""One resolved request: `GenerateOutput.settings` is what was used, and a clip's sidecar makes
the same clip again."""

import json

import pytest
import soundfile
import torch

from audiodiff.cli import main
from audiodiff.pipeline import Pipeline, build_model
from audiodiff.request import GenerationRequest, RequestError
from tests.util import tiny_config


@pytest.fixture
def pipe(tmp_path):
    config = tiny_config(
        tmp_path,
        tmp_path / "run",
        conditioning={"labels": ["low", "high"], "numbers": {"pitch": [40, 90]}},
        sampling={"steps": 6, "sampler": "ddim", "guidance": 2.5, "guide": ["label"], "rest_guidance": 1.5},
    )
    torch.manual_seed(0)
    model = build_model(config)
    for param in model.parameters():
        torch.nn.init.normal_(param, std=0.02)
    return Pipeline(model, config)


def test_settings_with_defaults_are_the_models(pipe):
    settings = pipe.generate(label="low", n=2, seed=3).settings
    assert (settings.sampler, settings.steps, settings.guidance) == ("ddim", 6, 2.5)
    assert settings.guidance_interval == (0.0, 1.0) and settings.seeds == (3, 4)
    assert settings.guide == ("label",) and settings.rest == {}  # the model's guide, with nothing else asked
    assert settings.conditions == {"label": "low"} and settings.negatives == {}


def test_settings_with_every_option_given_are_the_calls(pipe):
    out = pipe.generate(
        label="high",
        pitch=60,
        negative_label="low",
        steps=3,
        sampler="euler",
        guidance=0.0,
        guidance_interval=(0.2, 0.9),
        seed=11,
        normalize=True,
    )
    settings = out.settings
    assert (settings.sampler, settings.steps, settings.guidance, settings.seed) == ("euler", 3, 0.0, 11)
    assert settings.guidance_interval == (0.2, 0.9) and settings.normalize
    assert settings.rest == {"label": "low"} and settings.conditions == {"label": "high", "pitch": 60}
    guided = pipe.generate(label="high", pitch=60, steps=3, seed=11).settings  # the model's guide applies
    assert guided.guide == ("label",) and guided.rest == {"pitch": 60} and guided.rest_guidance == 1.5


def test_settings_make_the_same_audio_again(pipe):
    first = pipe.generate(label="high", pitch=70, steps=3, seed=5, guidance=3.0)
    again = pipe.generate(request=GenerationRequest.from_settings(json.loads(first.settings.to_json())))
    assert torch.equal(first.audio, again.audio) and again.settings == first.settings


def test_a_bad_setting_is_refused_before_sampling(pipe):
    with pytest.raises(RequestError, match="guidance_interval"):
        pipe.resolve(guidance_interval=(0.8, 0.2))


def test_generate_writes_a_sidecar_that_regenerates_the_clip_bit_for_bit(pipe, tmp_path):
    checkpoint = pipe.save_pretrained(tmp_path / "model")
    out = tmp_path / "clips"
    assert main(["generate", "--checkpoint", str(checkpoint), "--cond", "label=high", "--cond", "pitch=65",
                 "--steps", "3", "--n", "2", "--seed", "9", "--out", str(out)]) == 0  # fmt: skip
    sidecar = json.loads((out / "sample_1.json").read_text())
    assert sidecar["index"] == 1 and sidecar["settings"]["seeds"] == [9, 10]
    assert sidecar["settings"]["conditions"] == {"label": "high", "pitch": 65.0}
    assert main(["generate", "--settings", str(out / "sample_1.json"), "--out", str(tmp_path / "again.wav")]) == 0
    original, _ = soundfile.read(out / "sample_1.wav", dtype="int16")
    again, _ = soundfile.read(tmp_path / "again.wav", dtype="int16")
    assert (original == again).all()


def test_a_mixed_clips_sidecar_makes_it_again(pipe, tmp_path):
    checkpoint = pipe.save_pretrained(tmp_path / "model")
    out = tmp_path / "mixed.wav"
    assert main(["generate", "--checkpoint", str(checkpoint), "--cond", "label=high", "--mix-to", "label=low",
                 "--mix-at", "0.6", "--steps", "3", "--seed", "2", "--out", str(out)]) == 0  # fmt: skip
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["mix"] == {"to": {"label": "low"}, "at": 0.6} and sidecar["settings"]["conditions"] == {
        "label": "high"
    }
    assert main(["generate", "--settings", str(out.with_suffix(".json")), "--out", str(tmp_path / "again.wav")]) == 0
    plain = pipe.generate(label="high", steps=3, seed=2).audio
    mixed, _ = soundfile.read(out, dtype="int16")
    assert (mixed == soundfile.read(tmp_path / "again.wav", dtype="int16")[0]).all()
    assert not (mixed == soundfile.read(_write(tmp_path / "plain.wav", plain), dtype="int16")[0]).all()


def test_an_edit_writes_a_sidecar_with_its_command_input_and_settings_that_makes_it_again(pipe, tmp_path):
    checkpoint = pipe.save_pretrained(tmp_path / "model")
    source = _write(tmp_path / "source.wav", pipe.generate(label="low", steps=2, seed=1).audio)
    out = tmp_path / "inpainted.wav"
    assert main(["inpaint", "--checkpoint", str(checkpoint), str(source), "--start", "0.05", "--end", "0.15",
                 "--cond", "label=high", "--steps", "3", "--seed", "7", "--out", str(out)]) == 0  # fmt: skip
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert (sidecar["model"], sidecar["command"], sidecar["input"]) == (str(checkpoint), "inpaint", str(source))
    assert sidecar["edit"] == {"start": 0.05, "end": 0.15, "resample_steps": 2}
    settings = sidecar["settings"]
    assert (settings["sampler"], settings["steps"], settings["seeds"]) == ("ddpm", 3, [7])  # inpainting's sampler
    assert settings["conditions"] == {"label": "high"} and settings["guidance"] == 2.5
    again = Pipeline.from_pretrained(sidecar["model"]).inpaint(
        sidecar["input"], **sidecar["edit"], request=GenerationRequest.from_settings(settings)
    )  # the sidecar is enough to make the edit again
    assert again.settings.to_dict() == settings
    edited, _ = soundfile.read(out, dtype="int16")
    assert (edited == soundfile.read(_write(tmp_path / "again.wav", again.audio), dtype="int16")[0]).all()
    assert main(["generate", "--settings", str(out.with_suffix(".json")), "--out", str(tmp_path / "x.wav")]) == 2
    assert not (tmp_path / "x.wav").exists()  # an edit's sidecar is not taken for a generated clip's


def _write(path, audio):
    from audiodiff.audio import save_audio

    return save_audio(path, audio[0], 16000)


def test_cli_help_lists_the_models_conditions_from_their_specs(pipe, tmp_path, capsys):
    checkpoint = pipe.save_pretrained(tmp_path / "model")
    with pytest.raises(SystemExit):
        main(["generate", "--checkpoint", str(checkpoint), "--help"])
    text = capsys.readouterr().out
    assert "label (label): the class to generate; one of low, high" in text
    assert "pitch (number)" in text and "trained on 40..90 MIDI" in text


def test_cond_names_a_condition_the_model_takes(pipe, tmp_path, capsys):
    checkpoint = pipe.save_pretrained(tmp_path / "model")
    code = main(["generate", "--checkpoint", str(checkpoint), "--cond", "loudness=3", "--out", str(tmp_path / "x.wav")])
    assert code == 2 and "this model takes ['label', 'pitch']" in capsys.readouterr().err


def test_a_kit_is_one_clip_per_label_from_one_seed_family(pipe):
    kit = pipe.generate_kit(seed=4, steps=2)
    assert list(kit) == ["low", "high"]
    alone = pipe.generate(label="high", seed=5, steps=2).audio[0]  # the second pad's seed is seed + 1
    assert torch.allclose(kit["high"], alone, atol=1e-3)


def test_generate_writes_24_bit_wav_when_asked(pipe, tmp_path):
    checkpoint = pipe.save_pretrained(tmp_path / "model")
    out = tmp_path / "clip.wav"
    assert main(["generate", "--checkpoint", str(checkpoint), "--label", "low", "--steps", "2", "--bits", "24", "--out", str(out)]) == 0  # fmt: skip
    assert soundfile.info(out).subtype == "PCM_24"


def test_the_demos_guidance_of_one_guides_nothing(pipe, tmp_path):
    """notes guides its label at `guidance` and the rest at 2.5; the page's "1 = none" must mean none."""
    from audiodiff.demo import DemoActions, Limits, ModelStore

    actions = DemoActions(ModelStore({}), Limits(), tmp_path)
    request = actions._request({"label": "high", "pitch": 60}, 3, 0, None, guidance=1.0)
    settings = pipe.resolve(request)
    assert settings.guide is None and settings.rest == {} and settings.guidance == 1.0
    guided = pipe.resolve(actions._request({"label": "high", "pitch": 60}, 3, 0, None, guidance=2.0))
    assert guided.guide == ("label",) and guided.rest_guidance == 1.5
