"""The demo's Drums tab end to end: a tiny stereo 44.1 kHz waveform model with drum labels and
descriptor numbers, served on 127.0.0.1, driven through `gradio_client` and a real browser."""

import json
import math
import socket
from pathlib import Path

import pytest
import soundfile
import torch

gr = pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'audiodiff[demo]'")
gradio_client = pytest.importorskip("gradio_client")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from audiodiff.audio import save_audio  # noqa: E402
from audiodiff.checkpoint import resolve_checkpoint  # noqa: E402
from audiodiff.demo import DemoActions, Limits, ModelStore, build_app  # noqa: E402
from audiodiff.train.diffusion import DiffusionTask  # noqa: E402
from audiodiff.train.trainer import Trainer  # noqa: E402
from tests.util import browser_page, needs_chromium, tiny_config, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(max_steps=8, max_batch=2, max_pads=4, max_seconds=1.0, max_upload_seconds=2.0)
RATE = 44100
SECONDS = 0.1
LABELS = ("kick", "snare", "hihat_closed")
NUMBERS = dict(velocity=80.0, decay=0.2, brightness=0.4)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{name: run}: "drums" (labels and velocity/decay/brightness, stereo 44.1 kHz waveform) and
    "plain" (the same data, unconditional), each trained for two steps."""
    root = tmp_path_factory.mktemp("drums")
    data = root / "data"
    generator = torch.Generator().manual_seed(0)
    time = torch.arange(int(SECONDS * RATE)) / RATE
    rows = []
    for kind, label in enumerate(LABELS):
        for index in range(3):
            body = (
                torch.sin(2 * math.pi * 60 * time)
                if label == "kick"
                else torch.randn(time.numel(), generator=generator)
            )
            clip = (0.5 * torch.exp(-time * (20 + 30 * index)) * body)[None].repeat(2, 1)
            save_audio(data / f"{label}_{index}.wav", clip, RATE)
            numbers = dict(velocity=40 + 40 * index, decay=0.1 + 0.1 * index, brightness=0.2 * (kind + 1))
            rows.append(dict(path=f"{label}_{index}.wav", label=label, **numbers))
    (data / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    runs = {}
    for name, conditioning in (
        ("drums", {"labels": "auto", "numbers": {name: "auto" for name in NUMBERS}}),
        ("plain", {}),
    ):
        config = tiny_config(
            data,
            root / name,
            dims=1,
            seconds=SECONDS,
            data={"sample_rate": RATE, "channels": 2},
            model={"in_channels": 2},
            conditioning=conditioning,
            sampling={"steps": 3},
            train={"steps": 2, "ckpt_every": 2},
        )
        Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
        runs[name] = str(resolve_checkpoint(root / name))  # the run's newest checkpoint
    return runs


@pytest.fixture(scope="module")
def server(models):
    torch.set_num_threads(1)
    port = free_port()
    app = build_app(limits=LIMITS, store=ModelStore(models))
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    yield app, f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture
def client(server):
    """A fresh session (the kit on the page is held per session)."""
    return Client(server[1], verbose=False)


def value(output):
    """An output of the client: a component update carries its value inside."""
    return output["value"] if isinstance(output, dict) and output.get("__type__") == "update" else output


def make_kit(client, pads=LABELS, seed=3, **extra):
    """/kit's outputs as (wav paths of the pad slots, pictures of the slots, files, status)."""
    args = dict(model="drums", pads=list(pads), steps=2, guidance=2.0, seed=seed, label="", negative_label="")
    outputs = client.predict(**(args | NUMBERS | extra), api_name="/kit")
    slots = LIMITS.max_pads
    return [value(o) for o in outputs[:slots]], [value(o) for o in outputs[slots : 2 * slots]], *outputs[2 * slots :]


def regenerate(client, pad, **extra):
    args = dict(pad=pad, model="drums", steps=2, guidance=2.0, label="", negative_label="")
    outputs = client.predict(**(args | NUMBERS | extra), api_name="/regenerate_pad")
    return [value(o) for o in outputs[: LIMITS.max_pads]], outputs[-1]


def read(path) -> torch.Tensor:
    audio, _ = soundfile.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(audio.T)


def test_kit_makes_a_24_bit_stereo_pad_per_label_from_one_seed_family(client):
    wavs, pictures, files, status = make_kit(client, seed=3)
    assert len(files) == 3 and wavs[3] is None and pictures[3] is None  # the fourth slot stays empty
    for wav, picture in zip(wavs[:3], pictures[:3]):
        info = soundfile.info(wav)
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (RATE, 2, "PCM_24", int(SECONDS * RATE))
        assert Path(picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [Path(wav).name for wav in wavs[:3]] == ["kick_seed3.wav", "snare_seed4.wav", "hihat_closed_seed5.wav"]
    assert "3 pads" in status and "seeds 3..5" in status and "24-bit" in status


def test_regenerating_a_pad_remakes_it_with_a_new_seed_and_keeps_the_others(client):
    before, _, _, _ = make_kit(client, seed=3)
    after, status = regenerate(client, pad=2)
    assert Path(after[1]).name == "snare_seed6.wav" and "pad 2 (snare) remade with seed 6" in status
    assert not torch.equal(read(after[1]), read(before[1]))
    assert torch.equal(read(after[0]), read(before[0])) and torch.equal(read(after[2]), read(before[2]))
    again, _ = regenerate(client, pad=2)
    assert Path(again[1]).name == "snare_seed7.wav"  # each regeneration takes the next unused seed


def test_regenerating_before_any_kit_says_to_make_one(client):
    with pytest.raises(AppError, match="no kit yet: press Generate kit first"):
        regenerate(client, pad=1)


def test_the_kits_numbers_come_from_the_forms_spec_built_widgets(models):
    """velocity, decay and brightness reach the model by name: one past its trained range meets `Condition.check`."""
    actions = DemoActions(ModelStore(models), LIMITS)
    with pytest.raises(gr.Error, match=r"velocity=500 is far outside the trained range"):
        actions.drum_kit("drums", ["kick"], 2, 2.0, 0, progress=lambda *a, **k: None, **(NUMBERS | {"velocity": 500}))


def test_too_many_pads_name_the_limit(models):
    actions = DemoActions(ModelStore(models), Limits(max_pads=2))
    with pytest.raises(gr.Error, match=r"pads=3 is over this page's limit of 2"):
        actions.drum_kit("drums", list(LABELS), 2, 2.0, 0, progress=lambda *a, **k: None, **NUMBERS)


def test_a_model_without_labels_is_told_plainly(client, models):
    form = DemoActions(ModelStore(models), LIMITS).drums_form("plain")
    assert "**plain** has no labels, so there is no kit to make" in form["drums_note"]["value"]
    assert form["drums_controls"]["visible"] is False
    with pytest.raises(AppError, match=r"plain has no labels, so the Drums tab cannot use it"):
        make_kit(client, model="plain")


def test_variations_of_an_uploaded_hit_come_back_like_pads(client, tmp_path):
    hit = write_clip(tmp_path, "hit.wav", 0.5 * torch.randn(1, 1600), 16000)  # mono 16 kHz: converted on upload
    outputs = client.predict(
        "drums", handle_file(str(hit)), "snare", 0.5, 2, 2, 2.0, 1, label="", negative_label="", **NUMBERS,
        api_name="/vary_hit",
    )  # fmt: skip
    wavs, files, status = [value(o) for o in outputs[:2]], outputs[-2], outputs[-1]
    assert len(files) == 2 and [Path(wav).name for wav in wavs] == [
        "variation_of_snare_at_strength_0.5_seed1.wav",
        "variation_of_snare_at_strength_0.5_seed2.wav",
    ]
    for wav in wavs:
        info = soundfile.info(wav)
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (RATE, 2, "PCM_24", int(SECONDS * RATE))
    assert status.startswith("2 variation(s) of a 0.10 s upload")


def test_an_uploaded_hit_over_the_length_limit_names_the_limit(client, tmp_path):
    long = write_clip(tmp_path, "long.wav", torch.zeros(1, 8000 * 3), 8000)
    with pytest.raises(AppError, match=r"long.wav: 3.0 s long, over the 2 s limit"):
        client.predict(
            "drums", handle_file(str(long)), "snare", 0.5, 1, 2, 2.0, 0, label="", negative_label="", **NUMBERS,
            api_name="/vary_hit",
        )  # fmt: skip


def test_mixing_at_either_end_is_that_label_alone(client):
    """`at` is the noise level of the switch: at 1 the clip is all `second` (the body's label
    never sampled), at 0 all `first`: each the kit's pad of that label and seed, bit for bit."""

    def mix(at):
        outputs = client.predict(
            "drums", "kick", "snare", at, 1, 2, 2.0, 4, label="", negative_label="", **NUMBERS, api_name="/mix"
        )
        return value(outputs[0]), outputs[-1]

    pads = {label: make_kit(client, pads=[label], seed=4)[0][0] for label in ("kick", "snare")}
    assert not torch.equal(read(pads["kick"]), read(pads["snare"]))
    surface, status = mix(1.0)
    assert Path(surface).name == "kick_to_snare_at_1_seed4.wav" and status.startswith("1 clip(s) of kick to snare")
    assert torch.equal(read(surface), read(pads["snare"])) and torch.equal(read(mix(0.0)[0]), read(pads["kick"]))


def test_the_drums_endpoints_name_the_pad_and_each_condition(server):
    info = server[0].get_api_info()["named_endpoints"]
    assert {"/kit", "/regenerate_pad", "/vary_hit", "/mix"} <= set(info)
    kit_inputs = {p["parameter_name"] for p in info["/kit"]["parameters"]}
    assert {"model", "pads", "steps", "guidance", "seed", "velocity", "decay", "brightness"} <= kit_inputs
    assert "pad" in {p["parameter_name"] for p in info["/regenerate_pad"]["parameters"]}


@needs_chromium
def test_browser_makes_a_kit_and_regenerates_one_pad(server):
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with browser_page(server[1], height=1600) as (page, sync_api):
        page.get_by_role("tab", name="Drums").click()
        page.locator("#generate-kit").click()
        audios = page.locator(".drum-pad-audio audio[src]")
        audios.nth(2).wait_for(state="attached", timeout=60_000)
        page.locator(".drum-pad-picture img").nth(2).wait_for(state="visible", timeout=30_000)
        first, second = audios.nth(0).get_attribute("src"), audios.nth(1).get_attribute("src")
        page.locator(".drum-pad-regenerate").nth(1).click()
        page.locator("#kit-status", has_text="remade with seed").wait_for(timeout=60_000)
        sync_api.expect(audios.nth(1)).not_to_have_attribute("src", second, timeout=30_000)  # in a shadow root
        kept, remade = audios.nth(0).get_attribute("src"), audios.nth(1).get_attribute("src")
        page.screenshot(path=str(artifacts / "demo_drums.png"), full_page=True)
    assert first and kept == first and remade != second  # the first pad kept, the second remade
