"""The Gradio page end to end: a tiny trained model served on 127.0.0.1, driven through
`gradio_client` (the API a page uses) and through a real browser (Debian chromium + Playwright)."""

import math
import re
import socket
from pathlib import Path

import pytest
import soundfile
import torch

gr = pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'audiodiff[demo]'")
gradio_client = pytest.importorskip("gradio_client")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from audiodiff.data.synth import build_synthetic  # noqa: E402
from audiodiff.demo import NO_MODEL_HELP, DemoActions, Limits, ModelStore, build_app, launch  # noqa: E402
from audiodiff.train.diffusion import DiffusionTask  # noqa: E402
from audiodiff.train.trainer import Trainer  # noqa: E402
from tests.util import browser_page, needs_chromium, tiny_config, tone, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(max_steps=8, max_batch=2, max_seconds=1.0, max_upload_seconds=2.0)
SAMPLE_RATE = 16000
HOP = 256


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A model with a label, a text prompt, a pitch number and both control curves, trained for two steps."""
    root = tmp_path_factory.mktemp("demo")
    build_synthetic(root / "data", per_class=3, seconds=0.25)
    config = tiny_config(
        root / "data",
        root / "run",
        conditioning={
            "labels": "auto",
            "text": {"dim": 16, "layers": 1, "heads": 2},
            "numbers": {"pitch": "auto"},
            "curves": {"f0": {}, "loudness": {}},
        },
        sampling={"steps": 3, "griffin_lim_iters": 4},
        train={"steps": 2, "ckpt_every": 2},
    )
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    return root / "run"


@pytest.fixture(scope="module")
def unlabelled(checkpoint, tmp_path_factory):
    """A model without labels (nor any other condition) on the same data, trained for two steps."""
    root = tmp_path_factory.mktemp("unlabelled")
    config = tiny_config(
        checkpoint.parent / "data",
        root / "run",
        sampling={"steps": 3, "griffin_lim_iters": 4},
        train={"steps": 2, "ckpt_every": 2},
    )
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    return root / "run"


@pytest.fixture(scope="module")
def server(checkpoint):
    torch.set_num_threads(1)
    port = free_port()
    app = launch([checkpoint], port=port, limits=LIMITS, prevent_thread_lock=True, quiet=True)
    yield app, f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server[1], verbose=False)


def value(output):
    """An output of the client: a component update carries its value inside."""
    return output["value"] if isinstance(output, dict) and output.get("__type__") == "update" else output


def generate(client, duration=0.5, batch_size=2, steps=2, label="high", text="", **extra):
    args = (
        dict(
            model="run",
            label=label,
            text=text,
            negative_label="",
            negative_text="",
            pitch=70.0,
            duration=duration,
            sampler="dpmpp_2m",
            steps=steps,
            guidance=2.0,
            seed=3,
            batch_size=batch_size,
        )
        | extra
    )
    return client.predict(**args, api_name="/generate")


@pytest.fixture(scope="module")
def source_wav(tmp_path_factory):
    """0.512 s: a whole number of mel frames, so a mel round trip keeps its length."""
    return write_clip(tmp_path_factory.mktemp("clips"), "tone.wav", tone(440, seconds=0.512))


def test_server_binds_to_localhost(server):
    assert server[0].server_name == "127.0.0.1"


def test_generate_returns_audio_of_the_asked_length_and_rate(client):
    outputs = generate(client, duration=0.5, batch_size=2)
    audios, images, files, status = outputs[:2], outputs[2:4], outputs[4], outputs[5]
    for audio, image in zip(audios, images):
        info = soundfile.info(value(audio))
        assert info.samplerate == SAMPLE_RATE and info.frames == SAMPLE_RATE // 2 // HOP * HOP
        assert Path(value(image)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(files) == 2 and "2 clip(s)" in status


def test_unused_result_slots_are_empty(client):
    outputs = generate(client, batch_size=1)
    assert value(outputs[0]) is not None and value(outputs[1]) is None and len(outputs[4]) == 1


def test_steps_over_the_limit_name_the_limit(client):
    with pytest.raises(AppError, match="maximum value 8"):
        generate(client, steps=20)


def test_unknown_label_lists_the_known_ones(client):
    with pytest.raises(AppError, match=r"unknown label 'seven'.*'chirp', 'high', 'low', 'noise'"):
        generate(client, label="seven")


def test_a_number_past_its_slider_meets_the_conditions_own_check(checkpoint):
    """The page adds no range check of its own: a caller past the slider's bounds meets `Condition.check`."""
    from audiodiff.demo import DemoActions

    actions = DemoActions(ModelStore({"run": str(checkpoint)}), LIMITS)
    with pytest.raises(gr.Error, match=r"pitch=5 is far outside the trained range"):
        actions.generate("run", 0.25, "ddim", 2, 2.0, 0, 1, progress=lambda *a, **k: None, label="low", pitch=5.0)


def test_text_prompt_generates(client):
    outputs = generate(client, label="", text="a high loud tone", batch_size=1)
    assert soundfile.info(value(outputs[0])).samplerate == SAMPLE_RATE


def test_variation_returns_audio_of_the_input_length(client, source_wav):
    result, before, after, status = client.predict(
        "run", handle_file(str(source_wav)), 0.5, 2, 1, label="low", pitch=70.0, api_name="/vary"
    )
    assert soundfile.info(result).frames == soundfile.info(str(source_wav)).frames
    assert Path(before).is_file() and Path(after).is_file() and "variation" in status


def test_variation_by_inversion_is_offered(client, source_wav):
    result, before, after, status = client.predict(
        "run", handle_file(str(source_wav)), 0.3, 2, 1, "inversion", label="low", pitch=70.0, api_name="/vary"
    )
    assert soundfile.info(result).frames == soundfile.info(str(source_wav)).frames and "by inversion" in status


def test_outpainting_keeps_the_span(client, source_wav):
    result, *_ = client.predict(
        "run", handle_file(str(source_wav)), 0.1, 0.3, "outside", 2, 1, label="low", pitch=70.0, api_name="/inpaint"
    )
    original, _ = soundfile.read(str(source_wav))
    edited, _ = soundfile.read(result)
    kept = slice(int(0.12 * SAMPLE_RATE), int(0.28 * SAMPLE_RATE))  # inside the crossfades
    assert abs(edited[kept] - original[kept]).max() < 1e-3 and abs(edited - original).max() > 1e-2


def test_continuation_adds_the_asked_seconds(client, source_wav):
    result, *_ = client.predict(
        "run", handle_file(str(source_wav)), 0.25, 2, 1, label="low", pitch=70.0, api_name="/continue"
    )
    assert abs(soundfile.info(result).frames - (soundfile.info(str(source_wav)).frames + SAMPLE_RATE // 4)) <= HOP


def test_edit_by_inversion_keeps_the_length_and_names_source_and_target(checkpoint, source_wav):
    actions = DemoActions(ModelStore({"run": str(checkpoint)}), LIMITS)
    result, before, after, status = actions.edit_by_inversion(
        "run", str(source_wav), "low", 1.0, 2, 0, away_from_source=True, label="high", pitch=70.0
    )
    assert soundfile.info(result).frames == soundfile.info(str(source_wav)).frames
    assert status.startswith("edit by inversion: low -> high (strength 1, away from the source):")


def test_edit_by_inversion_changes_only_the_label(checkpoint, source_wav, monkeypatch):
    """The source is the target with the chosen label: the pitch (and every other condition) stays."""
    actions = DemoActions(ModelStore({"run": str(checkpoint)}), LIMITS)
    pipe, asked = actions.store.get("run"), {}

    def edit(audio, **options):
        asked.update(options)
        return original(audio, **options)

    original = pipe.edit
    monkeypatch.setattr(pipe, "edit", edit)
    actions.edit_by_inversion("run", str(source_wav), "low", 0.5, 2, 0, label="high", pitch=70.0)
    assert asked["source"] == {"label": "low", "pitch": 70.0} and asked["target"] == {"label": "high", "pitch": 70.0}
    assert asked["request"].conditions == asked["target"] and asked["strength"] == 0.5 and asked["steps"] == 2


def test_edit_by_inversion_on_a_model_without_labels_says_which_to_pick(unlabelled, source_wav):
    actions = DemoActions(ModelStore({"plain": str(unlabelled)}), LIMITS)
    assert actions.inversion_source("plain")["choices"] == []
    with pytest.raises(gr.Error, match="plain has no labels, so there is no source label to invert from; pick a model"):
        actions.edit_by_inversion("plain", str(source_wav), None, 1.0, 2, 0)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda folder: _write_bytes(folder / "notes.wav", b"this is text, not audio"),
            "notes.wav: not a readable audio file",
        ),
        (lambda folder: write_clip(folder, "empty.wav", torch.zeros(1, 0)), "empty.wav"),
        (
            lambda folder: write_clip(folder, "long.wav", torch.zeros(1, 8000 * 3), 8000),
            r"long.wav: 3.0 s long, over the 2 s limit",
        ),
    ],
    ids=["not-audio", "empty", "too-long"],
)
def test_bad_upload_gets_a_clear_message_and_the_page_keeps_working(client, tmp_path, make, message):
    with pytest.raises(AppError, match=message):
        client.predict("run", handle_file(str(make(tmp_path))), 0.5, 2, 1, label="low", pitch=70.0, api_name="/vary")
    assert value(generate(client, batch_size=1)[0]) is not None


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_upload_over_the_byte_limit_names_the_limit(checkpoint, source_wav):
    from audiodiff.demo import DemoActions, discover_models

    actions = DemoActions(ModelStore(discover_models([checkpoint])), Limits(max_upload_bytes=1000))
    with pytest.raises(gr.Error, match=r"tone.wav: 0.0 MB, over this page's upload limit of 0.001 MB"):
        actions.read_upload(str(source_wav), SAMPLE_RATE, 1)


def test_vocoder_tab_plays_both_round_trips_with_timings(client, source_wav):
    *outputs, timings = client.predict("run", handle_file(str(source_wav)), api_name="/vocode")
    wavs = outputs[0::2]
    lengths = {soundfile.info(path).frames for path in wavs}
    assert len(wavs) == 3 and lengths == {soundfile.info(str(source_wav)).frames}
    assert "Griffin-Lim" in timings and timings.count(" ms |") == 2


def test_curves_tab_follows_a_recording_or_a_shape_and_draws_them(client, source_wav):
    result, picture, status = client.predict(
        "run",
        handle_file(str(source_wav)),
        12,
        "glide",
        60,
        "crescendo",
        -20,
        2,
        2.0,
        0,
        label="high",
        pitch=70.0,
        api_name="/curves",
    )
    assert soundfile.info(result).samplerate == SAMPLE_RATE and Path(picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "moved +12 semitones" in status and "within 50 cents" in status
    result, picture, status = client.predict(
        "run", None, 0, "vibrato", 64, "none", -20, 2, 2.0, 0, label="high", pitch=70.0, api_name="/curves"
    )
    assert status.startswith("f0 vibrato:") and soundfile.info(result).frames > 0
    with pytest.raises(AppError, match="no curve asked"):
        client.predict("run", None, 0, "none", 60, "none", -20, 2, 2.0, 0, label="high", pitch=70.0, api_name="/curves")


def test_curves_on_a_model_without_them_say_which_to_pick():
    from audiodiff.demo import DemoActions, discover_models

    actions = DemoActions(ModelStore(discover_models()), LIMITS)
    with pytest.raises(gr.Error, match="digits takes no control curves; pick a model trained with them"):
        actions.curves(
            "digits",
            None,
            0,
            "glide",
            60,
            "flat",
            -20,
            2,
            2.0,
            0,
            progress=lambda *a, **k: None,
            label="seven",
        )


def test_eight_concurrent_generate_requests_all_complete(server, client):
    jobs = [
        client.submit(
            model="run",
            label="low",
            text="",
            negative_label="",
            negative_text="",
            pitch=60.0,
            duration=0.25,
            sampler="ddim",
            steps=2,
            guidance=2.0,
            seed=seed,
            batch_size=1,
            api_name="/generate",
        )
        for seed in range(8)
    ]
    results = [job.result(timeout=120) for job in jobs]
    assert all(soundfile.info(value(outputs[0])).frames > 0 for outputs in results)
    store = server[0].audiodiff_store  # each model loaded once (the page reads every model's specs for its form)
    assert store.load_count == len(store._pipes) and "run" in store._pipes


def test_model_picker_fills_the_conditions_it_takes(checkpoint):
    from audiodiff.demo import DemoActions, discover_models

    actions = DemoActions(ModelStore(discover_models([checkpoint])), LIMITS)
    form = actions.form("run", {"label": "noise"})
    assert form["label"]["value"] == "noise" and [v for _, v in form["label"]["choices"]][1:] == [
        "chirp",
        "high",
        "low",
        "noise",
    ]
    assert form["text"]["visible"] and form["pitch"]["visible"] and not form["velocity"]["visible"]  # notes' velocity
    low, high = form["pitch"]["minimum"], form["pitch"]["maximum"]
    assert 40 < low < high < 100 and math.isclose(form["pitch"]["value"], round((low + high) / 2, 2))
    assert "Training" in form["about"]["value"] and "step 2 of 2" in form["about"]["value"]


def test_one_widget_per_condition_name_spans_every_models_spec():
    from audiodiff.demo.form import condition_fields
    from audiodiff.models.conditioning import ConditionSpec

    fields = condition_fields(
        {
            "a": [ConditionSpec("pitch", "number", "", low=40, high=60), ConditionSpec("mood", "toggle", "", choices=("yes", "no"))],
            "b": [ConditionSpec("pitch", "number", "", low=30, high=50), ConditionSpec("mood", "number", "", low=0, high=1)],
        }
    )  # fmt: skip
    assert (fields["pitch"].widget, fields["pitch"].low, fields["pitch"].high) == ("slider", 30, 60)
    assert fields["mood"].widget == "textbox" and list(fields) == ["pitch", "mood", "negative_mood"]


def test_a_condition_named_like_an_input_of_the_page_is_refused_naming_the_model():
    from audiodiff.demo import DemoActions
    from audiodiff.models.conditioning import ConditionError, ConditionSpec

    class Store(ModelStore):
        def specs(self, name):
            return [ConditionSpec("seed", "number", "a number", low=0, high=1)]

    actions = DemoActions(Store({"odd": "nowhere"}), LIMITS)
    with pytest.raises(ConditionError, match=r"odd: its condition\(s\) \['seed'\] share a name with an input of"):
        _ = actions.fields  # read when the page is built


def test_about_names_the_models_guidance_defaults(checkpoint):
    from audiodiff.demo import DemoActions, discover_models

    store = ModelStore(discover_models([checkpoint]))
    actions = DemoActions(store, LIMITS)
    assert "guidance 3, vocoder" in actions.about("run")
    sampling = store.get("run").config.sampling
    sampling.guidance, sampling.guide, sampling.rest_guidance, sampling.guidance_interval = (
        2.5,
        ["label"],
        2.0,
        (0.5, 1.0),
    )
    assert "guidance 2.5 (label; the rest at 2) at noise levels 0.5-1, vocoder" in actions.about("run")


def test_the_api_names_every_input_and_output(checkpoint):
    info = build_app([checkpoint], LIMITS).get_api_info()["named_endpoints"]
    assert set(info) == {"/generate", "/vary", "/inpaint", "/continue", "/edit", "/curves", "/vocode"} | {
        "/kit",
        "/regenerate_pad",
        "/vary_hit",
        "/mix",
    }
    generate_inputs = {p["parameter_name"]: p["label"] for p in info["/generate"]["parameters"]}
    assert {"model", "label", "text", "steps", "guidance", "seed", "batch_size"} <= set(generate_inputs)
    assert {"pitch", "velocity", "negative_label", "negative_text"} <= set(generate_inputs)  # each condition by name
    assert "pitch (trained" in generate_inputs["pitch"]
    for name, endpoint in info.items():
        labels = [r["label"] for r in endpoint["returns"]] + [p["parameter_name"] for p in endpoint["parameters"]]
        assert not [label for label in labels if label.startswith("value_")], f"{name}: unnamed {labels}"


def test_start_up_line_names_the_share_flag(checkpoint, capsys):
    app = launch([checkpoint], port=free_port(), limits=LIMITS, prevent_thread_lock=True)
    try:
        printed = capsys.readouterr().out
    finally:
        app.close()
    assert "audiodiff demo --share" in printed and "share=True" not in printed


def test_page_without_models_says_how_to_get_one():
    app = build_app(store=ModelStore({}))
    texts = [block.value for block in app.blocks.values() if isinstance(block, gr.Markdown)]
    assert NO_MODEL_HELP in texts and "audiodiff train" in NO_MODEL_HELP


def test_cli_refuses_a_missing_checkpoint(tmp_path, capsys):
    from audiodiff.cli import main

    assert main(["demo", "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


@needs_chromium
def test_browser_generates_and_shows_audio_and_spectrogram(server):
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with browser_page(server[1], height=1400) as (page, _):
        page.locator("#condition-text textarea").fill("a high loud tone")
        page.locator("#generate").click()
        page.locator(".result-audio audio[src]").first.wait_for(state="attached", timeout=60_000)
        page.locator(".result-spectrogram img").first.wait_for(state="visible", timeout=30_000)
        source = page.locator(".result-audio audio[src]").first.get_attribute("src")
        page.screenshot(path=str(artifacts / "demo_generate.png"), full_page=True)
    assert source and (source.startswith("blob:") or ".wav" in source)


@needs_chromium
def test_browser_edits_an_upload_by_inversion(server, source_wav):
    with browser_page(server[1], height=1400) as (page, _):
        page.get_by_role("tab", name="Edit", exact=True).click()
        page.locator("#edit-audio input[type=file]").set_input_files(str(source_wav))
        page.locator("#edit-audio audio[src]").wait_for(state="attached", timeout=30_000)  # uploaded
        page.get_by_role("tab", name="Edit by inversion").click()
        page.locator("#edit-by-inversion").click()
        # the page opens on the first model, its first label in both the form and the source dropdown
        done = re.compile(r"edit by inversion: (\w+) -> \1 \(strength 1\): 0.51 s in, 0.51 s out")
        page.locator("#edit-status", has_text=done).wait_for(timeout=60_000)


def tiny_upsampler(input_rate=SAMPLE_RATE):
    """An untrained upsampler: the tests check rates and lengths, not the band it predicts."""
    from audiodiff.upsampler import BandwidthExtender, Upsampler, UpsamplerModelConfig

    torch.manual_seed(0)
    config = UpsamplerModelConfig(input_rate=input_rate, dim=16, intermediate_dim=32, num_layers=1)
    return Upsampler(BandwidthExtender(config))


def generate_args(full_band):
    return dict(
        model="run", duration=0.5, sampler="dpmpp_2m", steps=2, guidance=2.0, seed=3, batch_size=1,
        full_band=full_band, label="high", pitch=70.0,
    )  # fmt: skip


def test_full_band_generates_at_the_upsamplers_rate_and_unticked_at_the_models(checkpoint):
    store = ModelStore({"run": str(checkpoint)}, upsampler=tiny_upsampler())
    actions = DemoActions(store, LIMITS)
    rates = {}
    for full_band in (True, False):
        outputs = actions.generate(**generate_args(full_band))
        info = soundfile.info(outputs[0]["value"])
        rates[full_band] = info.samplerate
        assert f"at {info.samplerate} Hz" in outputs[-1]
        assert info.frames == round(SAMPLE_RATE // 2 // HOP * HOP * info.samplerate / SAMPLE_RATE)
    assert rates == {True: 44100, False: SAMPLE_RATE}
    assert store.get("run").upsampler is None  # the shared Pipeline is left as it was


def test_full_band_edit_comes_back_at_the_upsamplers_rate(checkpoint, source_wav):
    actions = DemoActions(ModelStore({"run": str(checkpoint)}, upsampler=tiny_upsampler()), LIMITS)
    result = actions.vary("run", str(source_wav), 0.5, 2, 0, full_band=True, label="high", pitch=70.0)
    assert soundfile.info(result[0]).samplerate == 44100


def test_full_band_for_a_model_at_another_rate_is_refused_naming_the_rates(checkpoint):
    actions = DemoActions(ModelStore({"run": str(checkpoint)}, upsampler=tiny_upsampler(8000)), LIMITS)
    with pytest.raises(gr.Error, match="8000 Hz audio and run makes 16000 Hz"):
        actions.generate(**generate_args(True))


def test_full_band_through_the_page_api_uses_the_bundled_upsampler(client):
    outputs = generate(client, batch_size=1, full_band=True)
    assert soundfile.info(value(outputs[0])).samplerate == 44100


def test_an_adapter_is_served_on_its_base_as_one_more_model(checkpoint, unlabelled, tmp_path):
    from audiodiff.adapters import AdapterError
    from audiodiff.checkpoint import newest_checkpoint
    from audiodiff.demo import discover_adapters, discover_models

    adapter = {"kind": "lora", "rank": 2, "alpha": 4, "targets": ["attention", "conv"]}
    config = tiny_config(
        checkpoint.parent / "data",
        tmp_path / "lora",
        sampling={"steps": 3, "griffin_lim_iters": 4},
        train={"steps": 4, "ckpt_every": 4, "init_from": str(unlabelled), "adapter": adapter, "lr": 2e-2},
    )
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    extra, attached = discover_adapters({str(tmp_path / "lora"): 0.5})
    assert list(extra) == ["run + lora x0.5"] and extra["run + lora x0.5"] == str(newest_checkpoint(unlabelled))
    store = ModelStore(discover_models([unlabelled]) | extra, adapters=attached)
    adapted, plain = store.get("run + lora x0.5"), store.get("run")
    assert adapted.info["adapters"][0]["scale"] == 0.5 and "adapters" not in plain.info
    assert store.config("run + lora x0.5")["kind"] == "diffusion"  # the About tab reads the base's card
    a, b = (pipe.generate(seed=0, steps=2).audio for pipe in (adapted, plain))
    assert not torch.allclose(a, b)
    with pytest.raises(AdapterError, match="not an adapter"):
        discover_adapters({str(unlabelled): 1.0})
    with pytest.raises(AdapterError, match="finite"):
        discover_adapters({str(tmp_path / "lora"): float("nan")})
