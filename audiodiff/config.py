"""Dataclass configs: YAML recipe files and `section.key=value` overrides, checked strictly.

An unknown key is an error that lists the valid keys; a value of the wrong type is an error that
names the key, the value and the expected type. Configs round-trip through plain dicts (JSON).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from audiodiff.audio import MelSpec
from audiodiff.errors import UserError
from audiodiff.models.autoencoder import AutoencoderModelConfig
from audiodiff.models.conditioning import ConditioningConfig
from audiodiff.models.unet import UNetConfig

__all__ = [
    "AutoencoderLossConfig",
    "AutoencoderRunConfig",
    "ConfigError",
    "DataConfig",
    "DiffusionConfig",
    "DiffusionRunConfig",
    "DistillConfig",
    "DistillRunConfig",
    "StudentConfig",
    "SamplingConfig",
    "TrainConfig",
    "UpsamplerModelConfig",
    "UpsamplerRunConfig",
    "VocoderLossConfig",
    "VocoderModelConfig",
    "VocoderRunConfig",
    "apply_overrides",
    "from_dict",
    "load_yaml",
    "to_dict",
]

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A config that cannot be used; the message names the key and the fix."""


def to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain JSON-able data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(item) for item in obj]
    if isinstance(obj, dict):
        return {str(key): to_dict(value) for key, value in obj.items()}
    return obj


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass `cls` from `data`, checking keys and types recursively."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        place = f"{where}: " if where else ""
        raise ConfigError(f"{place}unknown key(s) {unknown}; valid keys are {sorted(fields)}")
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        values[name] = _convert(hints[name], value, key)
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where or cls.__name__}: {error}") from None


def _convert(kind: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} does not fit {kind}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        return from_dict(kind, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item_kind = args[0] if args else Any
        items = [_convert(item_kind, item, f"{key}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        value_kind = args[1] if len(args) > 1 else Any
        return {str(k): _convert(value_kind, v, f"{key}.{k}") for k, v in value.items()}
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 1e-4 as a string
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def load_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `section.key=value` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. train.steps=100")
        dotted, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return data


# --------------------------------------------------------------------------------------------
# The schema of a diffusion training run (a recipe's config.yaml); each section is a dataclass.


@dataclasses.dataclass
class DataConfig:
    path: str | list[str] = (
        ""  # a folder of audio, a manifest (.jsonl/.csv), a known layout, a shard folder, or a list of them
    )
    layout: str = "auto"  # "auto" or a name in audiodiff.data.layouts.LAYOUTS
    split: str | None = "train"  # items of another split are left out (None = all); items without one are kept
    labels_subset: list[str] | None = None  # keep only items with these labels (None = all)
    representation: Literal["mel", "wave", "latent"] = "mel"  # latent: the mel encoded by `autoencoder`
    autoencoder: str = ""  # representation=latent: a mel autoencoder checkpoint, run directory or bundled name
    sample_rate: int = 16000  # files at other rates are resampled on load
    channels: int = 1  # 1 downmixes; 2 keeps (or duplicates) stereo
    segment_seconds: float = 1.0
    min_seconds: float = 0.05  # shorter files are skipped; longer ones are cropped, shorter segments padded
    random_crop: bool = True
    normalize: Literal["none", "peak", "loudness"] = "peak"  # one gain per file, from the whole file
    gain: float = 1.0  # wave models: the model sees audio x gain (one fixed factor, so levels stay comparable)
    mu_law: float = 0.0  # wave models: compand samples with mu-law (mu, e.g. 255) before the gain; 0 = linear
    label_from_folder: bool = False  # plain folders: the parent folder names the label
    number_fields: list[str] = dataclasses.field(default_factory=list)  # manifest fields used as numbers
    curves: list[str] = dataclasses.field(default_factory=list)  # control curves measured from each item (f0, loudness)
    curve_method: str = "auto"  # f0 tracker for `curves`: auto (crepe if installed), crepe, crepe-full or pyin
    max_items: int | None = None
    max_file_seconds: float = 600.0  # longer files are skipped (a guard against huge headers)
    num_workers: int = 0  # DataLoader worker processes
    cache_dir: str | None = None  # full-length mels (or resampled waves) cached here; None = off
    scan_cache: bool = True  # remember file checks (by path, size, mtime) so a restart does not decode every file

    def __post_init__(self):
        if self.segment_seconds <= 0 or self.sample_rate <= 0:
            raise ConfigError(
                f"data.segment_seconds={self.segment_seconds} and data.sample_rate={self.sample_rate} must be positive"
            )
        if not self.gain > 0 or (self.gain != 1.0 and self.representation != "wave"):
            raise ConfigError(
                f"data.gain={self.gain}: a positive factor, for representation=wave only "
                "(mels are normalised and latents carry their autoencoder's latent_scale)"
            )
        if not self.mu_law >= 0 or (self.mu_law and self.representation != "wave"):
            raise ConfigError(
                f"data.mu_law={self.mu_law}: mu >= 0 (0 = linear samples, 255 = telephony's), for representation=wave only"
            )
        if self.channels not in (1, 2):
            raise ConfigError(f"data.channels={self.channels}: use 1 (mono) or 2 (stereo)")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers={self.num_workers} must be 0 (load in the training process) or more")
        unknown = sorted(set(self.curves) - {"f0", "loudness"})
        if unknown or self.curve_method not in ("auto", "crepe", "crepe-full", "pyin"):
            raise ConfigError(
                f"data.curves={self.curves} / data.curve_method={self.curve_method!r}: curves are f0 and loudness, "
                "methods auto, crepe, crepe-full or pyin"
            )

    @property
    def segment_samples(self) -> int:
        return int(round(self.segment_seconds * self.sample_rate))


@dataclasses.dataclass
class DiffusionConfig:
    shift: float = 1.0  # log-SNR shift: > 1 trains (and samples) more at high noise; for long inputs
    objective: Literal["v", "flow"] = "v"  # v-prediction, or rectified flow (velocity ε − x on a straight path)


@dataclasses.dataclass
class SamplingConfig:
    """Defaults for generation and training previews."""

    sampler: str = "dpmpp_2m"
    steps: int = 25
    guidance: float = 3.0
    guide: list[str] = dataclasses.field(
        default_factory=list
    )  # default of guide=, where a call asks one of these (and no negatives)
    rest_guidance: float = (
        1.0  # with guide: the scale of the asked conditions it does not name (1 = followed, unguided)
    )
    guidance_interval: tuple[float, float] = (
        0.0,
        1.0,
    )  # noise levels 2θ/π where guidance applies (with guide: where it exceeds rest_guidance)
    vocoder: str = "griffin_lim"  # "griffin_lim", or a vocoder checkpoint directory
    griffin_lim_iters: int = 32


@dataclasses.dataclass
class TrainConfig:
    out_dir: str = "runs/default"
    steps: int = 10_000
    max_minutes: float = (
        0.0  # stop (checkpointed) after this much wall-clock time in the loop, summed over resumes; 0 = no limit
    )
    batch_size: int = 32  # per process
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.01
    lr_schedule: Literal["cosine", "constant", "exponential"] = "cosine"
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    lr_gamma: float = 0.999  # exponential: lr * lr_gamma ** (step / 100)
    grad_clip: float = 1.0  # 0 disables clipping
    ema_decay: float = 0.999
    precision: Literal["auto", "fp32", "bf16", "fp16"] = (
        "auto"  # auto: bf16 where the hardware has it natively, else fp32
    )
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 500
    ckpt_minutes: float = 5.0  # also checkpoint after this much wall-clock time since the last one; 0 = only ckpt_every
    keep_last: int = 3
    preview_every: int = 500  # 0 disables previews; a run shorter than 4x this previews every steps/4
    preview_count: int = 4
    nan_policy: Literal["skip", "stop"] = "skip"  # on a non-finite loss or gradient
    max_bad_steps: int = 20  # consecutive skipped steps before the run stops anyway
    threads: int = 0  # torch CPU threads; 0 = the cores other work leaves free (printed at the start)
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    init_from: str = (
        ""  # start from this bundled model or checkpoint (fine-tuning; vocoders: the generator); "" = from scratch
    )
    # diffusion runs: {kind: lora|dora, rank, alpha, targets} trains a low-rank adapter on the
    # frozen init_from model and exports only the adapter (`audiodiff.adapters`)
    adapter: dict | None = None

    def __post_init__(self):
        if self.adapter is not None:
            if not self.init_from:
                raise ConfigError("train.adapter adapts a trained model: set train.init_from (e.g. notes)")
            from audiodiff.adapters import AdapterConfig, AdapterError

            try:
                AdapterConfig(**self.adapter)
            except TypeError as error:
                raise ConfigError(f"train.adapter: {error}; keys are kind, rank, alpha, targets, dropout") from None
            except AdapterError as error:
                raise ConfigError(str(error)) from None
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("train.steps and train.batch_size must be at least 1")
        if self.ckpt_every < 1 or self.keep_last < 1:
            raise ConfigError("train.ckpt_every and train.keep_last must be at least 1")
        for name in ("max_minutes", "ckpt_minutes", "threads", "preview_every"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"train.{name}={value}: must be 0 (off / automatic) or more")


@dataclasses.dataclass
class StudentConfig:
    """What a distilled student records about itself (see `DistillConfig`)."""

    teacher: str = ""  # the checkpoint or bundled name it was distilled from
    base: str = ""  # the first teacher of the chain: a model sampled with guidance, no distillation
    method: str = "guidance"  # a row of `audiodiff.models.distillation.DISTILL_METHODS` (checked when the run starts)
    steps: int = 1  # the step count it was distilled for
    guidance_range: list[float] | None = None  # guidance is an input over this range (None: baked in)


@dataclasses.dataclass
class DiffusionRunConfig:
    """A diffusion training run: what a recipe's config.yaml holds."""

    kind: Literal["diffusion"] = "diffusion"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    mel: MelSpec = dataclasses.field(default_factory=MelSpec)
    model: UNetConfig = dataclasses.field(default_factory=UNetConfig)
    conditioning: ConditioningConfig = dataclasses.field(default_factory=ConditioningConfig)
    diffusion: DiffusionConfig = dataclasses.field(default_factory=DiffusionConfig)
    sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    student: StudentConfig | None = None  # set on distilled students

    def __post_init__(self):
        representation = self.data.representation
        wave = representation == "wave"
        if wave and self.model.dims != 1:
            raise ConfigError("data.representation=wave needs model.dims=1")
        if not wave and self.model.dims != 2:
            raise ConfigError(f"data.representation={representation} needs model.dims=2")
        if (representation == "latent") != bool(self.data.autoencoder):
            raise ConfigError(
                "data.representation=latent needs data.autoencoder (a mel autoencoder checkpoint, e.g. runs/mel-vae-16k)"
                if representation == "latent"
                else f"data.autoencoder={self.data.autoencoder!r} is only read with data.representation=latent; remove it or set the representation"
            )
        if representation == "latent" and (self.data.curves or self.conditioning.curves):
            raise ConfigError(
                "control curves steer mel and waveform models; latent models do not take them yet: remove conditioning.curves and data.curves"
            )
        if wave and self.model.in_channels != self.data.channels:
            raise ConfigError(
                f"model.in_channels={self.model.in_channels} must equal data.channels={self.data.channels}"
            )
        if self.mel.sample_rate != self.data.sample_rate and not wave:
            raise ConfigError(
                f"mel.sample_rate={self.mel.sample_rate} must equal data.sample_rate={self.data.sample_rate}"
            )


@dataclasses.dataclass
class DistillConfig:
    teacher: str = "digits"  # a bundled model, checkpoint or run directory
    method: str = "guidance"  # a row of `audiodiff.models.distillation.DISTILL_METHODS` (checked when the run starts)
    guidance_range: list[float] = dataclasses.field(
        default_factory=lambda: [1.0, 4.0]
    )  # scales a guidance student learns
    guidance: float = 2.0  # progressive/consistency from a teacher without a guidance input: the scale baked in
    student_steps: int = (
        8  # progressive: the student's sampling steps (its teacher takes twice as many); consistency: 1-2
    )
    intervals: int = 16  # consistency: the teacher's DDIM steps over the grid that trajectories follow
    init_from_teacher: bool = True  # start from the teacher's weights (same architecture only)
    # each condition left out of a training example with this probability (None: the teacher's
    # conditioning.drop_prob); above it, the student also learns the partial asks (a label alone)
    drop_prob: float | None = None
    # adversarial: the weight of the teacher regulariser beside the critic's term, and the critic's lr
    distill_weight: float = 1.0
    discriminator_lr: float = 2.0e-4


@dataclasses.dataclass
class DistillRunConfig:
    """A distillation run: the student is the teacher's config with `model`, `data` and `sampling`
    overrides on top, trained on the teacher's predictions."""

    kind: Literal["distill"] = "distill"
    distill: DistillConfig = dataclasses.field(default_factory=DistillConfig)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)  # keys of DataConfig
    model: dict[str, Any] = dataclasses.field(default_factory=dict)  # keys of UNetConfig (default: the teacher's)
    sampling: dict[str, Any] = dataclasses.field(default_factory=dict)  # keys of SamplingConfig
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


# --------------------------------------------------------------------------------------------
# The schema of a vocoder training run.


def gan_train_config(out_dir: str, ema_decay: float, batch_size: int) -> TrainConfig:
    """The training defaults of a GAN run (vocoders, upsamplers): HiFi-GAN's AdamW betas and
    exponential decay, no warm-up, no clipping."""
    return TrainConfig(
        out_dir=out_dir,
        lr=2e-4,
        betas=(0.8, 0.99),
        lr_schedule="exponential",
        lr_gamma=0.999,
        warmup_steps=0,
        grad_clip=0.0,
        ema_decay=ema_decay,
        batch_size=batch_size,
        precision="auto",
    )


def check_gain_db(gain_db: list[float]) -> None:
    """A GAN run's level augmentation: [low, high] in dB."""
    if len(gain_db) != 2 or not -120.0 <= gain_db[0] <= gain_db[1] <= 40.0:
        raise ConfigError(f"gain_db={gain_db} must be [low, high] in dB with low <= high, e.g. [-30, 0]")


@dataclasses.dataclass
class VocoderModelConfig:
    generator: str = "istft"  # a name in audiodiff.vocoder.generators.GENERATORS
    generator_config: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of the preset
    discriminators: list[str] = dataclasses.field(default_factory=lambda: ["mpd", "mrd"])  # mpd, msd, mrd
    discriminator_options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class VocoderLossConfig:
    """Weights of the generator's loss terms (HiFi-GAN's: mel x45, features x2), read by `gan_step`.

    `stft` (multi-resolution STFT loss, Parallel WaveGAN) is off by default; set it (e.g. 1-2.5)
    to add it beside, or instead of, the mel loss. Gradient clipping is `train.grad_clip`.
    """

    mel: float = 45.0
    feature_matching: float = 2.0
    adversarial: float = 1.0
    stft: float = 0.0  # multi-resolution STFT loss weight (0 = off)
    phase: float = 0.0  # APNet's phase losses (instantaneous phase + group delay + angular frequency) at the MelSpec's STFT (0 = off)
    pitch: float = 1.0  # a source-filter generator's F0 and voicing loss (other generators have none); 0: no F0 targets, the source follows the pitch head
    discriminator_start: int = 0  # steps of reconstruction-only warm-up before the GAN losses


@dataclasses.dataclass
class VocoderRunConfig:
    """A vocoder training run: segments of audio, their mels, a generator and discriminators."""

    kind: Literal["vocoder"] = "vocoder"
    data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(representation="wave", segment_seconds=0.5, random_crop=True)
    )
    mel: MelSpec = dataclasses.field(default_factory=MelSpec)
    model: VocoderModelConfig = dataclasses.field(default_factory=VocoderModelConfig)
    loss: VocoderLossConfig = dataclasses.field(default_factory=VocoderLossConfig)
    # level augmentation: each training segment gets a gain drawn uniformly in dB from this range
    # (a peak-normalised set otherwise teaches one level, and quieter input comes out smeared)
    gain_db: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0])
    train: TrainConfig = dataclasses.field(default_factory=lambda: gan_train_config("runs/vocoder", 0.0, 16))

    def __post_init__(self):
        if self.data.representation != "wave":
            raise ConfigError("a vocoder trains on audio: set data.representation=wave")
        if self.data.sample_rate != self.mel.sample_rate:
            raise ConfigError(
                f"data.sample_rate={self.data.sample_rate} must equal mel.sample_rate={self.mel.sample_rate}"
            )
        if self.data.channels != 1:
            raise ConfigError("vocoders are mono: set data.channels=1")
        check_gain_db(self.gain_db)


@dataclasses.dataclass
class UpsamplerModelConfig:
    """An upsampler's architecture (`audiodiff.upsampler.BandwidthExtender`). At the defaults
    (about 1.2M parameters) 10 s of output is about 1,700 frames of a 4-block ConvNeXt stack at
    dim 192: far cheaper than a waveform network at 44.1 kHz."""

    input_rate: int = 16000  # the rate of the audio it extends
    sample_rate: int = 44100  # the rate it writes
    n_fft: int = 1024
    hop_length: int = 256
    dim: int = 192
    intermediate_dim: int = 576
    num_layers: int = 4
    kernel_size: int = 7
    ramp_hz: float = 1000.0  # crossfade below the input's Nyquist, where resampling's filter rolls off
    max_magnitude: float = 1000.0

    def __post_init__(self):
        if not 0 < self.input_rate < self.sample_rate:
            raise ValueError(
                f"upsampler: input_rate={self.input_rate} must be positive and below sample_rate={self.sample_rate}"
            )
        if self.n_fft < self.hop_length or (self.n_fft - self.hop_length) % 2 or self.kernel_size % 2 == 0:
            raise ValueError("upsampler: need n_fft >= hop_length, n_fft - hop_length even, and an odd kernel_size")
        if not 0 <= self.ramp_hz < self.input_rate / 2 or min(self.dim, self.intermediate_dim, self.num_layers) < 1:
            raise ValueError("upsampler: need 0 <= ramp_hz < input_rate / 2 and positive dim, intermediate_dim, layers")

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def bin_of(self, hz: float) -> int:
        return int(round(hz * self.n_fft / self.sample_rate))

    @property
    def crossover_bins(self) -> tuple[int, int]:
        """(first bin of the ramp, first bin taken wholly from the prediction)."""
        top = self.bin_of(self.input_rate / 2)
        return self.bin_of(self.input_rate / 2 - self.ramp_hz), top


@dataclasses.dataclass
class UpsamplerRunConfig:
    """An upsampler training run: full-band audio segments, 16 kHz versions of them as input, a
    bandwidth extender and the vocoders' discriminators and losses (`gan_step`)."""

    kind: Literal["upsampler"] = "upsampler"
    data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(
            representation="wave", sample_rate=44100, segment_seconds=0.5, random_crop=True, normalize="none"
        )
    )
    model: UpsamplerModelConfig = dataclasses.field(default_factory=UpsamplerModelConfig)
    discriminators: list[str] = dataclasses.field(default_factory=lambda: ["mpd", "mrd"])
    discriminator_options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    loss: VocoderLossConfig = dataclasses.field(default_factory=lambda: VocoderLossConfig(mel=15.0, stft=15.0))
    # the mel loss's analysis: full band at the output rate (the band the model adds is all above 8 kHz)
    mel: MelSpec = dataclasses.field(
        default_factory=lambda: MelSpec(
            sample_rate=44100, n_fft=2048, hop_length=512, win_length=2048, n_mels=128, f_max=None
        )
    )
    gain_db: list[float] = dataclasses.field(default_factory=lambda: [-20.0, 0.0])
    train: TrainConfig = dataclasses.field(default_factory=lambda: gan_train_config("runs/upsampler", 0.999, 8))

    def __post_init__(self):
        if self.data.representation != "wave" or self.data.channels != 1:
            raise ConfigError("an upsampler trains on mono audio: set data.representation=wave and data.channels=1")
        rates = {self.data.sample_rate, self.model.sample_rate, self.mel.sample_rate}
        if len(rates) > 1:
            raise ConfigError(
                f"data.sample_rate={self.data.sample_rate}, model.sample_rate={self.model.sample_rate} and "
                f"mel.sample_rate={self.mel.sample_rate} must be equal (the rate the upsampler writes)"
            )
        check_gain_db(self.gain_db)


# --------------------------------------------------------------------------------------------
# The schema of a mel autoencoder training run (latent diffusion's first stage).


@dataclasses.dataclass
class AutoencoderLossConfig:
    l1: float = 1.0  # L1 between the normalised log-mels
    multiscale: float = 1.0  # L1 between the two, average-pooled by 2 and 4 on both axes (coarse structure)
    scales: list[int] = dataclasses.field(default_factory=lambda: [2, 4])
    kl: float = 1.0e-4  # KL to N(0, I), per latent element: keeps the latent smooth and near unit scale


@dataclasses.dataclass
class AutoencoderRunConfig:
    """A mel autoencoder run: segments of the normalised log-mel in, the same out."""

    kind: Literal["autoencoder"] = "autoencoder"
    data: DataConfig = dataclasses.field(default_factory=lambda: DataConfig(segment_seconds=1.0, random_crop=True))
    mel: MelSpec = dataclasses.field(default_factory=MelSpec)
    model: AutoencoderModelConfig = dataclasses.field(default_factory=AutoencoderModelConfig)
    loss: AutoencoderLossConfig = dataclasses.field(default_factory=AutoencoderLossConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(out_dir="runs/mel-vae", lr=2e-4, batch_size=16, ema_decay=0.999)
    )

    def __post_init__(self):
        if self.data.representation != "mel":
            raise ConfigError("an autoencoder encodes mel spectrograms: set data.representation=mel")
        if self.data.sample_rate != self.mel.sample_rate:
            raise ConfigError(
                f"data.sample_rate={self.data.sample_rate} must equal mel.sample_rate={self.mel.sample_rate}"
            )
        if self.mel.n_mels % self.model.freq_down:
            raise ConfigError(
                f"mel.n_mels={self.mel.n_mels} must be a multiple of model.freq_down={self.model.freq_down}"
            )
        frames = self.mel.num_frames(int(self.data.segment_seconds * self.data.sample_rate))
        if frames < self.model.time_down:
            raise ConfigError(
                f"data.segment_seconds={self.data.segment_seconds} gives {frames} mel frames, fewer than model.time_down={self.model.time_down}"
            )
        if any(scale < 2 for scale in self.loss.scales):
            raise ConfigError(f"loss.scales={self.loss.scales}: each pooling scale must be at least 2")
