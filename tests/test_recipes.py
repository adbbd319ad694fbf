"""Every recipe's smoke variant: its config.yaml as written (representation, model, conditioning),
on a tiny generated copy of its data, trained for 2 steps through the CLI, then one clip generated.
So no recipe rots: a renamed key, a data field the recipe needs, or a model that no longer builds
fails here."""

import shutil
from pathlib import Path

import pytest
import torch

from audiodiff.cli import main
from audiodiff.data.builders import build_digits, build_notes
from audiodiff.data.builders import notes as notes_module
from audiodiff.data.synth import build_synthetic, synth_clip
from audiodiff.pipeline import Pipeline
from audiodiff.spaces import Latent
from tests.util import write_clip

ROOT = Path(__file__).resolve().parents[1]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path(notes_module.DEFAULT_SOUNDFONT).is_file(),
    reason="fluidsynth or the FluidR3_GM soundfont not installed",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Tiny data sets, made on first use: name -> folder."""
    root = tmp_path_factory.mktemp("recipe-data")
    makers = {
        "synth": lambda folder: build_synthetic(folder, per_class=2, seconds=0.5),
        "digits": lambda folder: build_digits(folder, num_clips=10, seed=0, workers=2, progress=False),
        "notes": lambda folder: build_notes(
            folder, programs=[0, 33], pitches=[55, 67], velocities=[60, 120], workers=2, progress=False
        ),
        "notes-22k": lambda folder: build_notes(
            folder,
            programs=[0, 33],
            pitches=[55, 67],
            velocities=[60, 120],
            seconds=4.0,
            sample_rate=22050,
            workers=2,
            progress=False,
        ),
        "folder": make_user_folder,
        "drums": make_drum_folder,
    }
    made = {}

    def get(name: str) -> Path:
        if name not in made:
            makers[name](root / name)
            made[name] = root / name
        return made[name]

    return get


def make_user_folder(folder: Path) -> None:
    """What a user might have: sub-folders, captions for some files, mixed rates and channels."""
    generator = torch.Generator().manual_seed(0)
    for kind, rate, channels in (("low", 22050, 2), ("high", 16000, 1), ("chirp", 44100, 1)):
        for index in range(2):
            audio, _ = synth_clip(kind, rate, 1.5, generator)
            write_clip(folder / kind, f"{kind}{index}.wav", audio.expand(channels, -1), rate)
            if index == 0:
                (folder / kind / f"{kind}{index}.txt").write_text(f"a {kind} sound, take {index}")


def make_drum_folder(folder: Path) -> None:
    """A few decaying noise hits at 44.1 kHz, mono and stereo, with the drums builder's fields."""
    import json

    generator = torch.Generator().manual_seed(0)
    rows = []
    for index, (label, channels) in enumerate((("kick", 1), ("snare", 2), ("kick", 2), ("snare", 1))):
        samples = 44100 * (index + 2) // 8
        hit = torch.randn(channels, samples, generator=generator) * torch.exp(-torch.arange(samples) / 3000.0) * 0.5
        write_clip(folder / "wavs", f"hit{index}.wav", hit, 44100)
        rows.append({"path": f"wavs/hit{index}.wav", "label": label, "split": "train", "velocity": 40.0 + 20 * index,
                     "decay": 0.1 + 0.05 * index, "brightness": 0.3 + 0.1 * index})  # fmt: skip
    (folder / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def train_recipe(name: str, data_path: Path, out: Path, *overrides: str, config: str = "config.yaml") -> Path:
    """`audiodiff train --config recipes/NAME/CONFIG` on tiny data for 2 steps."""
    code = main(
        [
            "train",
            "--config",
            str(ROOT / "recipes" / name / config),
            "--no-progress",
            f"data.path={data_path}",
            f"data.cache_dir={out / 'cache'}",
            f"train.out_dir={out / 'run'}",
            "train.steps=2",
            "train.batch_size=4",
            "train.warmup_steps=1",
            "train.ckpt_every=2",
            "train.preview_every=0",
            "train.log_every=1",
            "train.precision=fp32",
            *(
                []
                if name.startswith(("vocoder", "mel-vae", "upsampler")) or config == "autoencoder.yaml"
                else ["sampling.griffin_lim_iters=4"]
            ),
            *overrides,
        ]
    )
    assert code == 0
    return out / "run"


def generate_one(run: Path, **conditions) -> torch.Tensor:
    pipe = Pipeline.from_pretrained(run)
    out = pipe.generate(n=1, steps=2, seed=0, progress=False, **conditions)
    assert out.audio.shape[:2] == (1, pipe.config.data.channels) and torch.isfinite(out.audio).all()
    assert out.audio.shape[-1] == pytest.approx(pipe.config.data.segment_seconds * out.sample_rate, rel=0.05)
    return out.audio


def test_every_recipe_has_a_smoke_test_here():
    recipes = {path.name for path in (ROOT / "recipes").iterdir() if (path / "config.yaml").is_file()}
    tested = {
        "quickstart",
        "digits-mel",
        "digits-wave",
        "digits-fast",
        "notes-fast",
        "notes-mel",
        "notes-curves",
        "folder",
        "vocoder-16k",
        "vocoder-22k",
        "vocoder-44k",
        "mel-vae-16k",
        "digits-latent",
        "mel-vae-22k",
        "notes-latent-22k",
        "drums",
        "drums-fast",
        "upsampler-44k",
    }
    assert recipes <= tested, f"recipes without a smoke test: {recipes - tested}"


def test_drums_recipe_is_stereo_at_44k_and_takes_its_descriptors(tmp_path, data):
    run = train_recipe(
        "drums", data("drums"), tmp_path, "model.channels=16", "model.head_channels=16", "model.patch_size=8"
    )
    pipe = Pipeline.from_pretrained(run)
    assert pipe.sample_rate == 44100 and pipe.space.channels == 2
    assert set(pipe.config.conditioning.numbers) == {"velocity", "decay", "brightness"}
    generate_one(run, label="snare", velocity=100, decay=0.2, brightness=0.5)


def test_drums_mel_recipe_is_a_stereo_44k_mel_model(tmp_path, data):
    run = train_recipe(
        "drums", data("drums"), tmp_path, "model.channels=16", "model.head_channels=16", config="mel.yaml"
    )
    pipe = Pipeline.from_pretrained(run)
    assert pipe.sample_rate == 44100 and pipe.space.channels == 2 and pipe.mel_spec.n_mels == 128
    generate_one(run, label="kick", velocity=100, decay=0.2, brightness=0.5)


def test_drums_latent_recipes_autoencoder_then_latent_u_net(tmp_path, data):
    autoencoder = train_recipe("drums", data("drums"), tmp_path / "ae", "model.channels=8", config="autoencoder.yaml")
    run = train_recipe(
        "drums", data("drums"), tmp_path / "latent", f"data.autoencoder={autoencoder}", "model.channels=16",
        "model.head_channels=16", config="latent.yaml",
    )  # fmt: skip
    pipe = Pipeline.from_pretrained(run)
    assert pipe.sample_rate == 44100 and pipe._shape(1, None) == (1, 8, 32, 22)
    generate_one(run, label="snare", velocity=100, decay=0.2, brightness=0.5)


def test_quickstart_recipe(tmp_path, data):
    run = train_recipe("quickstart", data("synth"), tmp_path)
    generate_one(run, label="high")


@needs_espeak
def test_digits_mel_recipe(tmp_path, data):
    run = train_recipe("digits-mel", data("digits"), tmp_path)
    generate_one(run, label="seven", text="the word seven, said slowly")


@needs_espeak
def test_digits_fast_recipe_guidance_then_progressive(tmp_path, data):
    """Both stages of the chain in scripts/distill-chain recipes/digits-fast, from the bundled teacher."""
    guidance = train_recipe("digits-fast", data("digits"), tmp_path / "guidance")
    generate_one(guidance, label="seven", guidance=3.0)
    assert (
        main(
            [
                "train",
                "--config",
                str(ROOT / "recipes" / "digits-fast" / "progressive.yaml"),
                "--no-progress",
                f"distill.teacher={guidance}",
                "distill.student_steps=2",
                f"data.path={data('digits')}",
                f"train.out_dir={tmp_path / 'steps-2'}",
                "train.steps=2",
                "train.batch_size=4",
                "train.ckpt_every=2",
                "train.preview_every=0",
                "train.precision=fp32",
            ]
        )
        == 0
    )
    assert Pipeline.from_pretrained(tmp_path / "steps-2").config.sampling.steps == 2
    generate_one(tmp_path / "steps-2", label="seven")


@needs_fluidsynth
def test_notes_fast_recipe(tmp_path, data):
    run = train_recipe("notes-fast", data("notes"), tmp_path)
    generate_one(run, label="keyboard", pitch=60, velocity=100, guidance=2.0)


@needs_fluidsynth
def test_notes_curves_recipe(tmp_path, data):
    """Fine-tuned from the bundled notes with both curves measured from the tiny set, then asked a glide."""
    run = train_recipe("notes-curves", data("notes"), tmp_path)
    pipe = Pipeline.from_pretrained(run)
    assert set(pipe.curves) == {"f0", "loudness"} and pipe.config.train.init_from == "notes"
    generate_one(run, label="keyboard", f0=[220.0, 330.0], loudness=[-30.0, -20.0])
    assert list((tmp_path / "cache").glob("mel-*/settings.json"))  # curves were measured and cached with the mels


@needs_espeak
def test_digits_wave_recipe(tmp_path, data):
    run = train_recipe("digits-wave", data("digits"), tmp_path)
    config = Pipeline.from_pretrained(run).config
    assert (config.data.representation, config.data.sample_rate, config.model.dims) == ("wave", 8000, 1)
    generate_one(run, label="three")
    assert list((tmp_path / "cache").glob("wave-*/settings.json"))  # the resampled waves were cached


@needs_fluidsynth
def test_notes_mel_recipe(tmp_path, data):
    run = train_recipe("notes-mel", data("notes"), tmp_path)
    config = Pipeline.from_pretrained(run).config
    assert config.conditioning.labels == ["bass", "keyboard"]
    low, high = config.conditioning.numbers["pitch"]
    assert 55 <= low < high <= 67 and set(config.conditioning.numbers) == {"pitch", "velocity"}
    generate_one(run, label="bass", pitch=60, velocity=100, text="an electric bass playing C4, loud")


def test_folder_recipe_unconditional(tmp_path, data):
    run = train_recipe("folder", data("folder"), tmp_path)
    generate_one(run)


def test_folder_lora_recipe_exports_an_adapter_of_notes(tmp_path, data):
    run = train_recipe("folder", data("folder"), tmp_path, config="lora.yaml")
    pipe = Pipeline.from_pretrained("notes", adapters=[run])
    assert pipe.info["adapters"][0]["base"] == "notes"
    out = pipe.generate(label="keyboard", pitch=60, steps=2)
    assert torch.isfinite(out.audio).all()


def test_folder_recipe_with_labels_and_captions(tmp_path, data):
    run = train_recipe(
        "folder",
        data("folder"),
        tmp_path,
        "data.label_from_folder=true",
        "conditioning.labels=auto",
        "conditioning.text={dim: 32, layers: 1, heads: 2}",
    )
    config = Pipeline.from_pretrained(run).config
    assert config.conditioning.labels == ["chirp", "high", "low"] and "sound" in config.conditioning.text.vocab
    generate_one(run, label="low", text="a low sound")


def test_mel_recipes_share_one_mel_spec_so_they_share_a_vocoder():
    from audiodiff.config import DiffusionRunConfig, from_dict, load_yaml

    specs = [
        from_dict(DiffusionRunConfig, load_yaml(ROOT / "recipes" / name / "config.yaml")).mel
        for name in ("digits-mel", "notes-mel", "folder")
    ]
    assert specs[0] == specs[1] == specs[2]


@pytest.mark.parametrize("name, rate", [("vocoder-16k", 16000), ("vocoder-22k", 22050), ("vocoder-44k", 44100)])
def test_vocoder_recipes(tmp_path, data, name, rate):
    """Both phases of a vocoder recipe (reconstruction, then the GAN from step 2), then a round trip."""
    from audiodiff.vocoder import Vocoder

    run = train_recipe(name, data("synth"), tmp_path, "loss.discriminator_start=1", "data.split=null")
    vocoder = Vocoder.from_pretrained(run)
    assert vocoder.mel_spec.sample_rate == rate
    audio = torch.randn(1, rate // 2) * 0.1
    mel = vocoder.mel_spec(audio)
    out = vocoder(mel)
    assert out.shape[-1] == mel.shape[-1] * vocoder.mel_spec.hop_length and torch.isfinite(out).all()
    log = [line for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    assert len(log) == 2


def test_longer_vocoder_recipe_continues_stage_one(tmp_path, data):
    """recipes/vocoder-16k/longer.yaml: stage 2 starts from a stage-1 run of config.yaml."""
    from audiodiff.vocoder import Vocoder

    stage1 = train_recipe("vocoder-16k", data("synth"), tmp_path / "stage1", "data.split=null")
    run = train_recipe(
        "vocoder-16k",
        data("synth"),
        tmp_path / "stage2",
        "data.split=null",
        f"train.init_from={stage1}",
        config="longer.yaml",
    )
    vocoder = Vocoder.from_pretrained(run)
    assert vocoder.generator.name == "istft"
    log = [line for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    assert "adversarial" in log[0]  # the GAN is on from the first step


def test_source_filter_vocoder_recipe(tmp_path, data):
    """recipes/vocoder-16k/source-filter.yaml: each clip's F0 measured and cached, both phases,
    then a round trip through the pitch head's F0."""
    from audiodiff.vocoder import Vocoder

    run = train_recipe(
        "vocoder-16k",
        data("synth"),
        tmp_path,
        "loss.discriminator_start=1",
        "data.split=null",
        config="source-filter.yaml",
    )
    vocoder = Vocoder.from_pretrained(run)
    assert vocoder.generator.name == "source_filter"
    assert any((tmp_path / "cache").rglob("*.safetensors"))  # the measured F0, cached with the audio
    out = vocoder(vocoder.mel_spec(torch.randn(1, 8000) * 0.1))
    assert out.shape == (1, 1, 8000 // 256 * 256) and torch.isfinite(out).all()
    assert all("pitch" in line for line in (run / "log.jsonl").read_text().splitlines() if line.strip())


def test_mel_vae_recipe(tmp_path, data):
    """The autoencoder recipe as written (its MelSpec is the vocoder's), then a round trip."""
    from audiodiff.latent import Autoencoder
    from audiodiff.vocoder import Vocoder

    run = train_recipe("mel-vae-16k", data("synth"), tmp_path, "data.split=null")
    autoencoder = Autoencoder.from_pretrained(run)
    assert autoencoder.mel_spec == Vocoder.from_pretrained("vocoder-16k").mel_spec
    mel = autoencoder.mel_spec(torch.randn(1, 8000) * 0.1)[None]
    latent = autoencoder.encode(mel)
    assert (
        latent.shape == (1, 4, 20, -(-mel.shape[-1] // 4))
        and autoencoder.decode(latent, mel.shape[-1]).shape == mel.shape
    )


@needs_espeak
def test_digits_latent_recipe(tmp_path, data):
    """The autoencoder recipe, then the latent digits recipe on its latents; the checkpoint carries the autoencoder."""
    autoencoder = train_recipe("mel-vae-16k", data("synth"), tmp_path / "ae", "data.split=null")
    run = train_recipe("digits-latent", data("digits"), tmp_path / "latent", f"data.autoencoder={autoencoder}")
    assert isinstance(Pipeline.from_pretrained(run).space, Latent)
    generate_one(run, label="seven", text="the word seven, said slowly")


@pytest.mark.slow  # two trainings on 4 s clips; the latent path itself runs in tests/test_latent_diffusion.py
@needs_fluidsynth
def test_notes_latent_22k_recipe(tmp_path, data):
    """4-second notes at 22.05 kHz: mel-vae-22k as written, then the latent U-Net on its latents."""
    autoencoder = train_recipe("mel-vae-22k", data("notes-22k"), tmp_path / "ae", "data.split=null")
    run = train_recipe(
        "notes-latent-22k", data("notes-22k"), tmp_path / "latent", f"data.autoencoder={autoencoder}", "data.split=null"
    )
    pipe = Pipeline.from_pretrained(run)
    assert pipe.sample_rate == 22050 and pipe._shape(1, None) == (1, 4, 20, 86)
    generate_one(run, label=pipe.labels[0], pitch=60, velocity=100)


def test_every_recipe_has_a_readme_with_its_command():
    for folder in (ROOT / "recipes").iterdir():
        if (folder / "config.yaml").is_file():
            readme = folder / "README.md"
            assert readme.is_file(), f"{folder.name}: no README.md"
            assert f"audiodiff train --config recipes/{folder.name}/config.yaml" in readme.read_text(), (
                f"{folder.name}: README lacks its command"
            )


def test_drums_fast_recipe_from_a_drums_teacher(tmp_path, data):
    """The adversarial two-step student, from a tiny drums teacher trained from its recipe."""
    teacher = train_recipe(
        "drums",
        data("drums"),
        tmp_path / "teacher",
        "model.channels=16",
        "model.head_channels=16",
        "model.patch_size=8",
    )
    run = train_recipe("drums-fast", data("drums"), tmp_path / "fast", f"distill.teacher={teacher}")
    pipe = Pipeline.from_pretrained(run)
    assert pipe.config.sampling.steps == 2 and pipe.config.student.method == "adversarial"
    generate_one(run, label="kick", velocity=80, decay=0.2, brightness=0.5)


def test_upsampler_recipe(tmp_path, data):
    """Reconstruction, then the GAN from step 2, on the drums' 44.1 kHz hits; the checkpoint
    extends 16 kHz audio to 44.1 kHz."""
    from audiodiff.upsampler import Upsampler

    run = train_recipe(
        "upsampler-44k", data("drums"), tmp_path, "loss.discriminator_start=1", "data.segment_seconds=0.25"
    )
    upsampler = Upsampler.from_pretrained(run)
    out = upsampler(torch.randn(1, 2, 8000) * 0.1, 16000)
    assert out.shape == (1, 2, 22050) and torch.isfinite(out).all()
    log = [line for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    assert '"discriminator"' in log[-1]
