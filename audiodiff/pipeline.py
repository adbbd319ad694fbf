"""`Pipeline`: a trained diffusion model, its sampler settings and its vocoder, composed in one
place. Loads from a checkpoint directory or a bundled name, generates audio, saves itself.

    pipe = Pipeline.from_pretrained("digits")
    out = pipe.generate(label="seven", n=4, steps=20, seed=0)
    out.audio  # [n, channels, samples] float32 in [-1, 1]; out.sample_rate

A latent model (`data.representation: latent`) denoises the latents of a mel autoencoder and
decodes latent -> mel -> vocoder; its checkpoint carries the autoencoder in `autoencoder/`.

Output keeps the model's own level. A clip whose peak would go over full scale is scaled down
(one gain for the clip, so no clipping distortion) to a peak of `PEAK_GUARD`; `normalize=True`
scales every clip's peak to `NORMALIZE_PEAK` instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import operator
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from audiodiff.audio import AudioError, MelSpec, load_audio, normalize_peak, resample, to_channels
from audiodiff.bundled import (
    BUNDLED_DIR,
    bundled_autoencoders,
    bundled_names,
    bundled_path,
    check_part_name,
    check_vocoder_name,
    find_checkpoint,
)
from audiodiff.checkpoint import (
    CONFIG,
    INFO_KEYS,
    WEIGHTS,
    CheckpointError,
    check_top_level,
    load_state_dict,
    read_json,
    save_tensors,
    write_checkpoint,
    write_json,
)
from audiodiff.config import ConfigError, DiffusionRunConfig, from_dict, to_dict
from audiodiff.diffusion.distill import GUIDANCE
from audiodiff.diffusion.editing import inpaint, slerp, vary
from audiodiff.diffusion.objective import OBJECTIVES, angles_for_steps
from audiodiff.diffusion.samplers import SAMPLERS, get_sampler, guided
from audiodiff.errors import UserError
from audiodiff.models.conditioning import ConditionError
from audiodiff.models.unet import UNet
from audiodiff.precision import autocast_dtype
from audiodiff.vocoder import GriffinLimVocoder, Vocoder, check_compatible

__all__ = ["GenerateOutput", "GenerationRequest", "Pipeline", "RequestError", "bundled_path", "BUNDLED_DIR"]

LONG_FACTOR = 1.5  # beyond this many training lengths, generate window by window
MAX_PASS_FACTOR = 4.0  # editing takes at most this many training lengths in one pass
MAX_PARAMETERS = 2_000_000_000  # refuse configs that would build a model larger than this
RUN_SECTIONS = [f.name for f in dataclasses.fields(DiffusionRunConfig)]
MAX_SECONDS = 600.0  # longest generated duration or continuation
MAX_SEED = 2**63 - 1
PEAK_GUARD = 0.99  # a clip whose peak is over 1 is scaled down to this peak
NORMALIZE_PEAK = 0.95  # normalize=True: every clip's peak
AUTOENCODER_FOLDER = "autoencoder"  # a latent model's checkpoint carries its autoencoder here


class RequestError(UserError, ValueError):
    """A sampling or editing option out of range (steps, duration, strength, a span, ...); the
    message names the value and what it may be."""


@dataclasses.dataclass
class GenerateOutput:
    audio: torch.Tensor  # [n, channels, samples], float32 in [-1, 1]
    sample_rate: int
    seeds: list[int]
    mel: torch.Tensor | None = None  # [n, n_mels, frames] for mel and latent models


def build_model(config: DiffusionRunConfig, where: str = "config") -> UNet:
    """Build the U-Net a config describes, after checking its size on the meta device."""
    try:
        with torch.device("meta"):
            probe = UNet(config.model, config.conditioning, config.mel)
    except (RuntimeError, ValueError, TypeError, OverflowError) as error:  # e.g. sizes that overflow
        raise CheckpointError(
            f"{where}: cannot build the model it describes ({error}); the config is corrupt"
        ) from None
    count = sum(p.numel() for p in probe.parameters())
    if count > MAX_PARAMETERS:
        raise CheckpointError(
            f"{where}: the model would have {count / 1e9:.1f}B parameters (limit {MAX_PARAMETERS / 1e9:.0f}B); the config is corrupt or hostile"
        )
    return UNet(config.model, config.conditioning, config.mel)


def parse_run_config(data: dict, where: str) -> DiffusionRunConfig:
    if data.get("kind") != "diffusion":
        raise CheckpointError(f"{where}: kind={data.get('kind')!r}, not a diffusion model checkpoint")
    check_top_level(data, [*RUN_SECTIONS, *INFO_KEYS], where)
    try:
        return from_dict(DiffusionRunConfig, {k: v for k, v in data.items() if k in RUN_SECTIONS})
    except ConfigError as error:
        raise CheckpointError(f"{where}: {error}") from None


class Pipeline:
    def __init__(
        self,
        model: UNet,
        config: DiffusionRunConfig,
        vocoder: Vocoder | None = None,
        info: dict | None = None,
        device: str | torch.device = "cpu",
        autoencoder=None,
        precision: str = "auto",
        channels_last: bool = False,
        compile: bool = False,
    ):
        """`autoencoder` (an `audiodiff.latent.Autoencoder`) is required by latent models.
        `precision` is the U-Net's while sampling ("auto", "fp32", "bf16", "fp16"; the sampler's
        state, the vocoder, the autoencoder and likelihoods stay fp32): "auto" is bf16 for mel and
        latent models where the hardware has native bf16 and fp32 otherwise, so a waveform model's
        raw samples never carry bf16's -48 dB rounding floor (generated mels stay within 1% of the
        seed-to-seed spread of fp32's). `channels_last` stores a mel U-Net's activations
        channels-last; `compile` runs the U-Net through `torch.compile`, a one-off compilation per
        batch shape that pays off over many calls. The defaults are the fastest for one call,
        measured by `python benchmarks/unet_speed.py --generate --compile` (README, "Generate
        speed"): on a 2-core AVX-512-BF16 CPU bf16 was 1.1x fp32 at batch 1 and 1.6-1.8x at batch
        16, channels-last was 2-12% slower in eager mode, and compiling (about 20 s on the first
        call, a few seconds per further batch shape) gained 1.05-1.2x per call."""
        self.model = model.eval().to(device)
        self.config = config
        self.device = torch.device(device)
        self.info = info or {}
        self.is_latent = config.data.representation == "latent"
        self.is_mel = config.data.representation in ("mel", "latent")  # sounds through a mel and a vocoder
        self.mel_spec: MelSpec | None = config.mel if self.is_mel else None
        if self.is_mel:
            vocoder = vocoder or GriffinLimVocoder(config.mel, config.sampling.griffin_lim_iters)
            check_compatible(config.mel, vocoder)
        self.vocoder = vocoder.to(self.device) if vocoder is not None else None
        self.autoencoder = None
        if self.is_latent:
            if autoencoder is None:
                raise CheckpointError(
                    f"{self.info.get('path', 'config')}: a latent model needs its autoencoder (Pipeline(..., autoencoder=))"
                )
            autoencoder.check_joins(config.mel, config.model.in_channels, self.info.get("path", "config"))
            self.autoencoder = autoencoder.to(self.device)
        self.precision = precision
        self._autocast_dtype()  # a bad name fails here, not at the first call
        self.channels_last = bool(channels_last)
        if self.channels_last and config.model.dims == 2:
            self.model.to(memory_format=torch.channels_last)
        self.compile = bool(compile)
        self._compiled = None

    def _autocast_dtype(self) -> torch.dtype | None:
        if self.precision == "auto" and self.config.model.dims != 2:
            return None
        try:
            return autocast_dtype(self.precision, self.device)
        except ValueError as error:
            raise ConfigError(f"precision={self.precision!r}: {error}") from None

    def _network(self) -> Callable:
        """The U-Net as sampling calls it: in the pipeline's precision and memory format, fp32 out."""
        dtype = self._autocast_dtype()
        model = self.model
        if self.compile:
            if self._compiled is None:  # a compiled module has no truth value
                self._compiled = torch.compile(self.model, dynamic=False)
            model = self._compiled
        if dtype is None and not self.channels_last:
            return model
        memory_format = (
            torch.channels_last if self.channels_last and self.config.model.dims == 2 else torch.contiguous_format
        )

        def network(x: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
            with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                out = model(x.contiguous(memory_format=memory_format), t, cond)
            return out.float().contiguous()

        return network

    # -- loading and saving

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        vocoder: Vocoder | str | None = None,
        device: str = "cpu",
        autoencoder=None,
        precision: str = "auto",
        channels_last: bool = False,
        compile: bool = False,
    ) -> Pipeline:
        """A bundled model name (e.g. "digits"), a checkpoint directory or a run directory.
        A latent model's autoencoder comes from the checkpoint (`autoencoder/`, or a bundled
        name), unless `autoencoder` (an `Autoencoder` or a path) is given. `precision`,
        `channels_last` and `compile`: see `Pipeline`."""
        folder = find_checkpoint(name_or_path, lambda: f"bundled models: {names}" if (names := bundled_names()) else "")
        data = read_json(folder / CONFIG)
        config = parse_run_config(data, str(folder / CONFIG))
        model = build_model(config, str(folder / CONFIG))
        load_state_dict(folder / WEIGHTS, model)
        if config.data.representation != "wave":
            choice = vocoder if vocoder is not None else config.sampling.vocoder
            if isinstance(choice, str):
                if vocoder is None:  # named by the checkpoint itself: only a sub-folder or a bundled vocoder
                    check_vocoder_name(choice, folder / CONFIG)
                vocoder = cls._load_vocoder(choice, folder, config)
            else:
                vocoder = choice
        if config.data.representation == "latent":
            autoencoder = cls._load_autoencoder(autoencoder, folder, config)
        info = {k: v for k, v in data.items() if k not in RUN_SECTIONS}
        info["path"] = str(folder)
        return cls(model, config, vocoder, info, device, autoencoder, precision, channels_last, compile)

    @staticmethod
    def _load_autoencoder(choice, folder: Path, config: DiffusionRunConfig):
        from audiodiff.latent import Autoencoder

        if choice is not None and not isinstance(choice, (str, os.PathLike)):
            return choice
        if choice is None:  # named by the checkpoint itself: its own sub-folder or a bundled autoencoder
            if (folder / AUTOENCODER_FOLDER / CONFIG).is_file():
                choice = folder / AUTOENCODER_FOLDER
            else:
                choice = config.data.autoencoder
                check_part_name(
                    "data.autoencoder",
                    str(choice),
                    folder / CONFIG,
                    bundled_autoencoders,
                    "pass autoencoder= to from_pretrained to use another",
                )
        return Autoencoder.from_pretrained(choice)

    @staticmethod
    def _load_vocoder(choice: str, folder: Path, config: DiffusionRunConfig) -> Vocoder:
        if choice == "griffin_lim":
            return GriffinLimVocoder(config.mel, config.sampling.griffin_lim_iters)
        local = folder / choice
        return Vocoder.from_pretrained(local if (local / CONFIG).is_file() else choice, config.mel)

    def save_pretrained(
        self, path: str | os.PathLike, dtype: torch.dtype | None = None, vocoder_name: str | None = None
    ) -> Path:
        """Write config.json + model.safetensors (and a trained vocoder in `vocoder/`).

        `dtype=torch.float16` stores the weights at half size (they load back as float32);
        `vocoder_name` refers to a vocoder by name (e.g. a bundled one) instead of copying it.
        """
        config = to_dict(self.config)
        has_weights = self.vocoder is not None and not isinstance(self.vocoder, GriffinLimVocoder)
        config["sampling"]["vocoder"] = vocoder_name or ("vocoder" if has_weights else "griffin_lim")
        data = {**config, **{k: v for k, v in self.info.items() if k != "path"}}
        state = self.model.state_dict()
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}

        def write(folder: Path) -> None:
            write_json(folder / CONFIG, data)
            save_tensors(folder / WEIGHTS, state)
            if has_weights and vocoder_name is None:
                self.vocoder.save_pretrained(folder / "vocoder")
            if self.autoencoder is not None and bundled_path(self.config.data.autoencoder) is None:
                self.autoencoder.save_pretrained(folder / AUTOENCODER_FOLDER)

        return write_checkpoint(path, write)

    # -- what the model takes

    @property
    def sample_rate(self) -> int:
        return self.config.data.sample_rate

    @property
    def conditions(self) -> list[str]:
        """What a user conditions on (a student's guidance input is set by `guidance=`)."""
        return [name for name in self.config.conditioning.names() if name != GUIDANCE]

    @property
    def labels(self) -> list[str]:
        return list(self.config.conditioning.labels)

    def default_duration(self) -> float:
        return self.config.data.segment_seconds

    def _shape(self, n: int, duration: float | None) -> tuple[int, ...]:
        if self.is_latent:
            return (n, *self.autoencoder.latent_shape(self.mel_spec.n_mels, self._mel_frames(duration)))
        if self.is_mel:
            return (n, self.config.model.in_channels, self.mel_spec.n_mels, self._mel_frames(duration))
        return (n, self.config.data.channels, self._samples(duration))

    def _samples(self, duration: float | None) -> int:
        """Samples of a clip of `duration` seconds (None: the training length)."""
        seconds = self.default_duration() if duration is None else _seconds("duration", duration)
        return int(round(seconds * self.sample_rate))

    def _mel_frames(self, duration: float | None) -> int | None:
        """Mel frames of a clip of `duration` (None: the training length); None for waveform models."""
        return max(1, self.mel_spec.num_frames(self._samples(duration))) if self.is_mel else None

    # -- generation

    def request(self, request: GenerationRequest | None = None, **options) -> GenerationRequest:
        """A `GenerationRequest` from keyword options (on top of `request`), checked against this
        model (sampler, steps, guidance), with the model's default step count filled in."""
        request = GenerationRequest.of(request, **options)
        if request.sampler is not None and request.sampler not in SAMPLERS:
            raise RequestError(f"unknown sampler {request.sampler!r}; choose one of {sorted(SAMPLERS)}")
        if self.config.sampling.sampler not in SAMPLERS:
            raise CheckpointError(
                f"{self.info.get('path', 'config')}: sampling.sampler={self.config.sampling.sampler!r} is "
                f"not a sampler; pass sampler= one of {sorted(SAMPLERS)}"
            )
        steps = self.config.sampling.steps if request.steps is None else request.steps
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 1000:
            raise RequestError(f"steps={steps}: must be a whole number between 1 and 1000")
        for name in ("guidance", "rest_guidance"):
            value = getattr(request, name)
            if value is not None and not math.isfinite(_number(value)):
                raise RequestError(f"{name}={value}: must be a finite number (1 = conditional, 0 = unconditional)")
        _check_seed("seed", request.seed)
        interval = (
            self.config.sampling.guidance_interval if request.guidance_interval is None else request.guidance_interval
        )
        return dataclasses.replace(request, steps=steps, guidance_interval=_check_interval(interval))

    def _notice_unconditioned(self, request: GenerationRequest) -> None:
        """Warn when a conditioned model is asked for nothing: it then samples unconditionally."""
        if self.conditions and not request.conditions and not request.negatives:
            takes = [
                f"{name} (e.g. {self.labels[0]!r})" if name == "label" and self.labels else name
                for name in self.conditions
            ]
            takes = ", ".join(takes[:-1]) + " or " + takes[-1] if len(takes) > 1 else takes[0]
            warnings.warn(
                f"no condition given, so this samples unconditionally; the model takes {takes}",
                UserWarning,
                stacklevel=_caller_level(),
            )

    def _resolve(self, request: GenerationRequest, n: int, default_sampler: str | None = None) -> _Sampling:
        """The request made concrete for a batch of n: the guided sampler-level model, the
        condition batch, steps, sampler and per-item noise."""
        self._notice_unconditioned(request)
        conditioner = self.model.conditioner
        network = OBJECTIVES[self.config.diffusion.objective].as_model(self._network())
        scale = self.config.sampling.guidance if request.guidance is None else float(request.guidance)
        away, rest = self._guidance_split(request)
        negative = conditioner.prepare(n, **away)
        if GUIDANCE in conditioner.conditions:  # a guidance-distilled student: the scale is an input, one call per step
            if negative or request.guidance_interval != (0.0, 1.0):
                teacher = self.config.student.base if self.config.student else "its teacher"
                raise ConditionError(
                    "this student takes guidance as an input and was distilled without negative conditions or a "
                    f"guidance interval; use its teacher ({teacher}) for negative_*, guide= and guidance_interval"
                )
            cond = conditioner.prepare(n, **{GUIDANCE: scale, **request.conditions})
            model = network
        else:
            cond = conditioner.prepare(n, **request.conditions)
            if not cond and not negative:
                scale = 1.0  # nothing to guide towards
            model = guided(network, scale, negative, request.guidance_interval, rest)
        seeds = [int(request.seed) + i for i in range(n)]
        sampler = request.sampler or default_sampler or self.config.sampling.sampler
        return _Sampling(model, cond, request.steps, sampler, seeds, request, self.config.diffusion.shift)

    def _guidance_split(self, request: GenerationRequest) -> tuple[dict, float]:
        """(what guidance moves away from, the scale of those conditions): the negatives at 1; or
        with `guide=` (else the model's `sampling.guide`, where the call asks one of those and no
        negatives; `guide=[]` turns that default off) every asked condition but the guided ones, at `rest_guidance`, so that guidance
        strengthens the guided ones (a label, say) while curves and numbers are followed as asked."""
        guide = request.guide
        if guide is None:
            guide = [name for name in self.config.sampling.guide if name in request.conditions]
            if not guide or request.negatives or GUIDANCE in self.model.conditioner.conditions:
                return request.negatives, 1.0
        else:
            guide = [guide] if isinstance(guide, str) else list(guide)
            if not guide:  # guide=[]: every asked condition at `guidance`, whatever the model's default
                return request.negatives, 1.0
            unknown = sorted(set(guide) - set(request.conditions))
            if unknown:
                raise RequestError(
                    f"guide={guide}: name conditions this call asks for ({sorted(request.conditions)}), e.g. guide=['label']"
                )
            if request.negatives:
                raise RequestError("guide= and negative_* both set what guidance moves away from; give one of them")
        rest = self.config.sampling.rest_guidance if request.rest_guidance is None else float(request.rest_guidance)
        return {name: value for name, value in request.conditions.items() if name not in guide}, rest

    def generate(
        self, n: int = 1, duration: float | None = None, request: GenerationRequest | None = None, **options
    ) -> GenerateOutput:
        """Sample `n` clips. `options` are the model's conditions (label=, text=, numbers),
        negatives (negative_label=, negative_text=, ...) and the `GenerationRequest` fields.
        Item i uses seed `seed + i`, so a seed gives the same audio at any batch size. Conditions
        left out are unconditional (a warning says so when none is given). A duration longer than the training clips is generated
        window by window, each continuing the last."""
        _check_count(n)
        shape = self._shape(n, duration)
        request = self._curve_shorthand(self.request(request, **options), shape)
        self._check_curve_length(request, shape)
        run = self._resolve(request, n)
        return self._finish(self.decode(self._sample_new(run, shape), run.seeds, self._mel_frames(duration)), request)

    @property
    def curves(self) -> list[str]:
        """The control curves this model takes (see `audiodiff.controls`)."""
        return list(self.config.conditioning.curves)

    def curves_from(self, audio, sample_rate: int | None = None, transpose: float = 0.0, method: str = "auto") -> dict:
        """The model's curves measured from a recording (a path, or samples with `sample_rate`):
        `{"f0": Hz per frame, "loudness": dB per frame}` for the curves it takes, with f0 moved
        by `transpose` semitones; pass them to `generate(**curves)`."""
        from audiodiff.controls import extract

        if not self.curves:
            raise ConditionError(
                "this model takes no control curves; use a model trained with conditioning.curves (e.g. notes)"
            )
        batch = self._audio_batch(audio, sample_rate, "melody")
        measured = extract(batch[0], self.sample_rate, self.curve_frame_rate, method)
        if "f0" in measured:
            measured["f0"] = measured["f0"] * float(2.0 ** (float(transpose) / 12.0))
        return {name: measured[name] for name in self.curves}

    @property
    def curve_frame_rate(self) -> float:
        """Curve frames per second: the mel frame rate, or for waveform models the bundled one."""
        from audiodiff.controls import FRAME_RATE

        return self.sample_rate / self.mel_spec.hop_length if self.is_mel else FRAME_RATE

    def _curve_shorthand(self, request: GenerationRequest, shape: tuple[int, ...]) -> GenerationRequest:
        """A model with an f0 curve asked for `pitch=` (a MIDI number) and no f0: the pitch held
        flat over the note's first 80% (how the notes data sounds: held, then released). Clips
        longer than a curve can steer (made window by window) keep `pitch=` as a number alone."""
        conditions = request.conditions
        if "f0" not in self.curves or "f0" in conditions or conditions.get("pitch") is None:
            return request
        if self._beyond_a_window(shape):
            return request
        from audiodiff.controls import shape as curve_shape

        pitches = (
            conditions["pitch"] if isinstance(conditions["pitch"], (list, tuple)) else [conditions["pitch"]] * shape[0]
        )
        try:
            curves = [curve_shape("f0", "flat", 64, pitch=float(pitch), sound=0.8) for pitch in pitches]
        except (TypeError, ValueError):
            return request  # the pitch condition names the error
        return dataclasses.replace(request, conditions={**conditions, "f0": curves})

    def _beyond_a_window(self, shape: tuple[int, ...]) -> bool:
        """True for clips made window by window (`_sample_new`), which a curve cannot steer."""
        return shape[-1] > self._shape(1, None)[-1] * LONG_FACTOR

    def _check_curve_length(self, request: GenerationRequest, shape: tuple[int, ...]) -> None:
        given = [name for name in self.curves if request.conditions.get(name) is not None]
        if given and self._beyond_a_window(shape):
            raise ConditionError(
                f"{given}: curves steer one window ({self.default_duration():g} s) of this model; "
                f"give duration <= {self.default_duration() * LONG_FACTOR:g} s, or leave the curves out"
            )

    def _sample_new(self, run: _Sampling, shape: tuple[int, ...]) -> torch.Tensor:
        """New clips of `shape` in model space; longer than a window, window by window."""
        window = self._shape(shape[0], None)[-1]
        if self._beyond_a_window(shape):
            x = self._sample(run, self.initial_noise(shape[:-1] + (window,), run.seeds))
            return self._extend(run, x, shape[-1])
        return self._sample(run, self.initial_noise(shape, run.seeds))

    def initial_noise(self, shape: tuple[int, ...], seeds: list[int]) -> torch.Tensor:
        return torch.stack([torch.randn(shape[1:], generator=torch.Generator().manual_seed(s)) for s in seeds]).to(
            self.device
        )

    def _sample(self, run: _Sampling, x: torch.Tensor) -> torch.Tensor:
        sample_fn = get_sampler(run.sampler)
        with run.progress(run.steps) as on_step:
            return sample_fn(run.model, x, angles_for_steps(run.steps, run.shift), run.cond, on_step, run.noise())

    def decode(self, x: torch.Tensor, seeds: list[int], frames: int | None = None) -> GenerateOutput:
        """Model output -> audio at the model's level (the vocoder's own output for mel models,
        the samples for waveform models), with the clipping guard: a clip whose peak is over 1
        is scaled down to a peak of `PEAK_GUARD`, one gain for the clip, so nothing is clipped.
        Latents are decoded to mels first, cut to `frames` mel frames when given."""
        mel = None
        if self.is_mel:
            mel = self.autoencoder.decode(x, frames) if self.is_latent else x
            mel = mel[:, 0].float().clamp(-1.0, 1.5)  # below -1 is below the log floor
            audio = self.vocoder(mel, clamp=False)  # the guard below scales instead of clipping
            mel = mel.cpu()
        else:
            audio = x
        audio = audio.float().cpu()
        peak = audio.abs().amax(dim=(-2, -1), keepdim=True)
        audio = torch.where(peak > 1.0, audio * (PEAK_GUARD / peak.clamp_min(1.0)), audio)
        return GenerateOutput(audio, self.sample_rate, seeds, mel)

    @staticmethod
    def _finish(out: GenerateOutput, request: GenerationRequest) -> GenerateOutput:
        """With `request.normalize`, every result clip's peak at `NORMALIZE_PEAK` (kept audio of
        an edit included); otherwise the output as decoded."""
        if request.normalize:
            out.audio = normalize_peak(out.audio, NORMALIZE_PEAK)
        return out

    # -- likelihood

    def log_likelihood(
        self,
        audio,
        sample_rate: int | None = None,
        steps: int = 12,
        probes: int = 1,
        seed: int = 0,
        t_min: float = 1e-3,
        progress: bool = False,
        **conditions,
    ) -> dict:
        """Negative log-likelihood of real clips under the model, from the probability-flow ODE
        (`audiodiff.diffusion.likelihood`), in bits per dimension of the model's space (the
        normalised log-mel, or the waveform) and in nats per clip.

        Clips are prepared as in training (the data config's normalisation, cropped or padded to the
        training length); `conditions` (label=..., numbers) give the conditional likelihood, and
        none the unconditional one; no guidance. Costs `4 * steps` model calls with backward
        passes per probe. Returns per-clip lists `nll_bits_per_dim`, `nll_nats` and the mean bits/dim
        with its standard error over clips (`mean_bits_per_dim`, `standard_error`)."""
        from audiodiff.audio import crop_or_pad
        from audiodiff.data.features import NORMALIZERS
        from audiodiff.diffusion.likelihood import ode_log_likelihood

        batch = self._audio_batch(audio, sample_rate)
        window = int(round(self.default_duration() * self.sample_rate))
        batch = torch.stack(
            [crop_or_pad(NORMALIZERS[self.config.data.normalize](clip), window, random=False) for clip in batch]
        )
        x = self._encode(batch)
        if self.is_mel:
            x = x[..., : self._shape(1, None)[-1]]
        conditioner = self.model.conditioner
        cond = conditioner.prepare(x.shape[0], **conditions)
        network = OBJECTIVES[self.config.diffusion.objective].as_model(self.model)
        bar = tqdm(total=steps, desc="likelihood", unit="step", leave=False, disable=not progress)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        for parameter in trainable:  # gradients with respect to the clips only
            parameter.requires_grad_(False)
        try:
            out = ode_log_likelihood(
                network,
                x,
                cond,
                steps=steps,
                probes=probes,
                t_min=t_min,
                shift=self.config.diffusion.shift,
                generator=torch.Generator().manual_seed(int(seed)),
                callback=lambda done, total: bar.update(1),
            )
        finally:
            for parameter in trainable:
                parameter.requires_grad_(True)
            bar.close()
        bits = out["nll_bits_per_dim"].cpu()
        spread = float(bits.std()) / math.sqrt(len(bits)) if len(bits) > 1 else float("nan")
        return {
            "nll_bits_per_dim": bits.tolist(),
            "nll_nats": (-out["log_likelihood"]).cpu().tolist(),
            "mean_bits_per_dim": float(bits.mean()),
            "standard_error": spread,
            "dims": int(x[0].numel()),
            "space": "autoencoder latent" if self.is_latent else "normalised log-mel" if self.is_mel else "waveform",
            "steps": steps,
            "probes": probes,
            "t_min": t_min,
        }

    # -- editing

    def _audio_batch(self, audio, sample_rate: int | None, name: str = "audio") -> torch.Tensor:
        """A path, `[samples]`, `[channels, samples]` or `[n, channels, samples]` at the model's
        rate and channel count, as `[n, channels, samples]`."""
        if isinstance(audio, (str, os.PathLike)):
            audio, sample_rate = load_audio(audio)
        audio = torch.as_tensor(audio, dtype=torch.float32)
        if audio.dim() == 1:
            audio = audio[None, None]
        elif audio.dim() == 2:
            audio = audio[None]
        if audio.dim() != 3 or audio.shape[-1] == 0:
            raise AudioError(
                f"{name}: expected [samples], [channels, samples] or [n, channels, samples], got {list(audio.shape)}"
            )
        if not torch.isfinite(audio).all():
            raise AudioError(f"{name}: contains NaN or Inf samples")
        if sample_rate is None:
            raise RequestError(
                f"{name}: pass sample_rate= for a tensor (the model runs at {self.sample_rate} Hz; it is resampled)"
            )
        channels = self.config.data.channels if not self.is_mel else 1
        audio = to_channels(resample(audio, int(sample_rate), self.sample_rate), channels, name)
        minimum = self.mel_spec.n_fft if self.is_mel else 1
        if audio.shape[-1] < minimum:
            raise AudioError(f"{name}: {audio.shape[-1]} samples is too short; need at least {minimum}")
        return audio

    def _max_samples(self) -> int:
        return int(self.default_duration() * MAX_PASS_FACTOR * self.sample_rate)

    def _mel(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio `[n, channels, samples]` -> normalised log-mel `[n, 1, mels, frames]`."""
        frames = self.mel_spec.num_frames(audio.shape[-1])
        return self.mel_spec(audio[..., : self.mel_spec.num_samples(frames)]).to(self.device)

    def _encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio `[n, channels, samples]` -> model space (mel `[n, 1, mels, frames]`, its latent,
        or audio). Latents cover the mel frames padded up to whole latent frames."""
        if self.is_latent:
            return self.autoencoder.encode(self._mel(audio))
        if self.is_mel:
            return self._mel(audio)
        return audio.to(self.device)

    def _samples_per_frame(self) -> int:
        """Samples per step along the model's last axis."""
        if self.is_latent:
            return self.mel_spec.hop_length * self.autoencoder.config.time_down
        return self.mel_spec.hop_length if self.is_mel else 1

    def _to_model_mask(self, mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """A sample mask `[samples]` (1 = regenerate) -> a mask over x's last axis (a latent
        frame is regenerated where any of its samples is)."""
        if not self.is_mel:
            return mask[: x.shape[-1]].float()
        hop = self._samples_per_frame()
        frames = x.shape[-1]
        padded = torch.nn.functional.pad(mask.float(), (0, max(0, frames * hop - mask.numel())))[: frames * hop]
        frame_mask = padded.reshape(frames, hop).amax(dim=1)
        # widen by one frame each side: an STFT frame spans several hops (a latent frame's decoder sees its neighbours)
        return torch.nn.functional.max_pool1d(frame_mask[None, None], 3, 1, 1)[0, 0]

    def _splice(
        self, generated: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, fade_seconds: float = 0.01
    ) -> torch.Tensor:
        """Put the original audio back where mask is 0, with short linear crossfades."""
        length = generated.shape[-1]
        keep = torch.nn.functional.pad(1 - mask.float(), (0, max(0, length - mask.numel())))[:length]
        width = max(1, int(fade_seconds * self.sample_rate))
        kernel = torch.ones(1, 1, width) / width
        # erode the kept region by the fade width, then blur: the fade happens inside the generated part
        keep = -torch.nn.functional.max_pool1d(-keep[None, None], 2 * width + 1, 1, width)
        keep = torch.nn.functional.conv1d(
            torch.nn.functional.pad(keep, (width // 2, width - 1 - width // 2), mode="replicate"), kernel
        )[0, 0]
        keep = torch.maximum(
            keep.clamp(0, 1), 1 - torch.nn.functional.pad(mask.float(), (0, max(0, length - mask.numel())))[:length]
        )
        original = torch.nn.functional.pad(original, (0, max(0, length - original.shape[-1])))[..., :length]
        return keep * original + (1 - keep) * generated

    def vary(
        self,
        audio,
        strength: float = 0.5,
        sample_rate: int | None = None,
        request: GenerationRequest | None = None,
        **options,
    ) -> GenerateOutput:
        """Audio-to-audio variation: noise the input to level `strength`, then sample back.
        strength 0 returns the input unchanged; 1 ignores it. `options` as for `generate`."""
        if not 0.0 <= _number(strength) <= 1.0:
            raise RequestError(f"strength={strength}: must be between 0 (return the input) and 1 (ignore it)")
        request = self.request(request, **options)
        batch = self._audio_batch(audio, sample_rate)
        self._check_length(batch, "varies")
        if strength == 0:  # nothing to sample
            seeds = [request.seed + i for i in range(batch.shape[0])]
            out = GenerateOutput(
                batch.clone(), self.sample_rate, seeds, self._mel(batch)[:, 0].cpu() if self.is_mel else None
            )
            return self._finish(out, request)
        run = self._resolve(request, batch.shape[0])
        with run.progress(max(1, round(run.steps * strength))) as on_step:
            x = vary(
                run.model,
                self._encode(batch),
                float(strength),
                run.steps,
                run.cond,
                run.noise(),
                run.sampler,
                run.shift,
                on_step,
            )
        return self._finish(self.decode(x, run.seeds, self._frames_of(batch)), request)

    def inpaint(
        self,
        audio,
        mask=None,
        sample_rate: int | None = None,
        start: float | None = None,
        end: float | None = None,
        resample_steps: int = 2,
        request: GenerationRequest | None = None,
        **options,
    ) -> GenerateOutput:
        """Regenerate a span and keep the rest: `mask` is `[samples]` at the model's rate (1 =
        regenerate), or give `start`/`end` in seconds. Kept audio is returned unchanged (mel
        models splice the input back in with 10 ms crossfades). Each step is one step of the
        request's sampler (default: ancestral DDPM, as in RePaint) followed by the replacement."""
        _check_resample_steps(resample_steps)
        request = self.request(request, **options)
        batch = self._audio_batch(audio, sample_rate)
        length = batch.shape[-1]
        sample_mask = self._sample_mask(mask, start, end, length)
        self._check_length(batch, "inpaints", "; trim it around the span")
        run = self._resolve(request, batch.shape[0], default_sampler=INPAINT_SAMPLER)
        known = self._encode(batch)
        model_mask = self._to_model_mask(sample_mask, known)
        with run.progress(run.steps) as on_step:
            x = inpaint(
                run.model,
                known,
                model_mask,
                run.steps,
                run.cond,
                run.noise(),
                resample_steps,
                shift=run.shift,
                callback=on_step,
                sampler=run.sampler,
            )
        out = self.decode(x, run.seeds, self._frames_of(batch))
        out.audio = self._splice(out.audio, batch[..., : out.audio.shape[-1]], sample_mask[: out.audio.shape[-1]])
        if out.audio.shape[-1] < length:  # mel models drop the last partial hop; keep it from the input
            out.audio = torch.cat([out.audio, batch[..., out.audio.shape[-1] :]], dim=-1)
        return self._finish(out, request)

    def _frames_of(self, batch: torch.Tensor) -> int | None:
        """Mel frames of audio `[n, channels, samples]` (None for waveform models)."""
        return self.mel_spec.num_frames(batch.shape[-1]) if self.is_mel else None

    def _check_length(self, batch: torch.Tensor, verb: str, hint: str = "; trim it") -> None:
        if batch.shape[-1] > self._max_samples():
            raise RequestError(
                f"audio is {batch.shape[-1] / self.sample_rate:.1f} s; this model {verb} at most "
                f"{self._max_samples() / self.sample_rate:.1f} s in one pass{hint}"
            )

    def _sample_mask(self, mask, start, end, length: int) -> torch.Tensor:
        if mask is None:
            if start is None and end is None:
                raise RequestError("inpaint needs a mask, or start=/end= seconds of the span to regenerate")
            seconds = length / self.sample_rate
            begin = 0.0 if start is None else float(start)
            finish = seconds if end is None else float(end)
            if (
                not (math.isfinite(begin) and math.isfinite(finish))
                or not 0 <= round(begin * self.sample_rate) < round(finish * self.sample_rate) <= length
            ):
                raise RequestError(
                    f"span {begin:g}..{finish:g} s is outside the audio (0..{seconds:.2f} s) or empty; "
                    f"give 0 <= start < end <= {seconds:.2f}"
                )
            first, last = int(round(begin * self.sample_rate)), int(round(finish * self.sample_rate))
            mask = torch.zeros(length)
            mask[first:last] = 1
        mask = torch.as_tensor(mask).float().flatten()
        if mask.numel() != length:
            raise RequestError(
                f"mask has {mask.numel()} values; the audio has {length} samples at {self.sample_rate} Hz"
            )
        if mask.max() <= 0:
            raise RequestError("mask is all zero: nothing to regenerate")
        if mask.min() >= 1:
            raise RequestError("mask is all one: nothing to keep; use generate() instead")
        return mask

    def continue_(
        self,
        audio,
        seconds: float,
        sample_rate: int | None = None,
        resample_steps: int = 2,
        request: GenerationRequest | None = None,
        **options,
    ) -> GenerateOutput:
        """Continue audio by `seconds` (outpainting at the end). Beyond one window the model
        continues window by window, each seeing the end of the last as context."""
        seconds = _seconds("seconds", seconds)
        _check_resample_steps(resample_steps)
        request = self.request(request, **options)
        batch = self._audio_batch(audio, sample_rate)
        window = self._shape(1, None)[-1]
        if self.is_mel:  # whole mel frames: what is kept ends where the continuation starts
            batch = batch[..., : self.mel_spec.num_samples(self.mel_spec.num_frames(batch.shape[-1]))]
        context = batch
        if (
            self.is_latent
        ):  # whole latent frames; the continuation overlaps the rest, and the input is spliced back over it
            per_frame = self._samples_per_frame()
            context = batch[..., : batch.shape[-1] // per_frame * per_frame]
            if context.shape[-1] < self.mel_spec.n_fft:
                raise AudioError(
                    f"audio: {batch.shape[-1]} samples is too short to continue; need at least {max(per_frame, self.mel_spec.n_fft)}"
                )
        known = self._encode(context)
        run = self._resolve(request, batch.shape[0], default_sampler=INPAINT_SAMPLER)
        added = self._shape(1, float(seconds) + (batch.shape[-1] - context.shape[-1]) / self.sample_rate)[-1]
        start = known[..., -window // 2 :] if known.shape[-1] > window // 2 else known
        x = self._extend(run, start, start.shape[-1] + added, resample_steps)
        full = torch.cat([known, x[..., -added:]], dim=-1)
        out = self.decode(
            full, run.seeds, self._frames_of(batch) + self._mel_frames(float(seconds)) if self.is_mel else None
        )
        mask = torch.zeros(out.audio.shape[-1])
        mask[batch.shape[-1] :] = 1
        out.audio = self._splice(out.audio, batch, mask)
        return self._finish(out, request)

    def _extend(self, run: _Sampling, x: torch.Tensor, target: int, resample_steps: int = 2) -> torch.Tensor:
        """Grow x along its last axis to `target`, one window at a time; each window keeps its
        first half (the end of what exists) and generates the rest."""
        window = self._shape(1, None)[-1]
        noise = run.noise(offset=20_000_033)
        while x.shape[-1] < target:
            context = x[..., -(window // 2) :]
            new = min(window - context.shape[-1], target - x.shape[-1])
            known = torch.cat([context, torch.zeros(*x.shape[:-1], new, device=x.device, dtype=x.dtype)], dim=-1)
            mask = torch.zeros(known.shape[-1], device=x.device)
            mask[context.shape[-1] :] = 1
            with run.progress(run.steps) as on_step:
                filled = inpaint(
                    run.model,
                    known,
                    mask,
                    run.steps,
                    run.cond,
                    noise,
                    resample_steps,
                    shift=run.shift,
                    callback=on_step,
                    sampler=run.sampler,
                )
            x = torch.cat([x, filled[..., context.shape[-1] :]], dim=-1)
        return x[..., :target]

    def loop(
        self,
        n: int = 1,
        duration: float | None = None,
        seam_fraction: float = 0.3,
        request: GenerationRequest | None = None,
        **options,
    ) -> GenerateOutput:
        """A clip that loops seamlessly: generate, rotate by half so the end meets the start in
        the middle, regenerate a span around that seam, rotate back. (A latent model's loop
        lasts a whole number of latent frames: the duration rounded up to one.)"""
        _check_count(n)
        shape = self._shape(n, duration)
        request = self._curve_shorthand(self.request(request, **options), shape)
        self._check_curve_length(request, shape)
        run = self._resolve(request, n)
        x = self._sample_new(run, shape)
        run = dataclasses.replace(run, sampler=request.sampler or INPAINT_SAMPLER)
        length = x.shape[-1]
        rolled = torch.roll(x, length // 2, dims=-1)
        mask = torch.zeros(length, device=x.device)
        half_seam = max(1, int(length * seam_fraction / 2))
        mask[length // 2 - half_seam : length // 2 + half_seam] = 1
        with run.progress(run.steps) as on_step:
            healed = inpaint(
                run.model,
                rolled,
                mask,
                run.steps,
                run.cond,
                run.noise(),
                2,
                shift=run.shift,
                callback=on_step,
                sampler=run.sampler,
            )
        x = torch.roll(healed, -(length // 2), dims=-1)
        if self.is_mel:  # vocode three copies and keep the middle, so the wrap-around is seamless in audio too
            out = self.decode(torch.cat([x, x, x], dim=-1), run.seeds)
            samples, frames = out.audio.shape[-1] // 3, out.mel.shape[-1] // 3
            out.audio = out.audio[..., samples : 2 * samples]
            out.mel = out.mel[..., frames : 2 * frames]
            return self._finish(out, request)
        return self._finish(self.decode(x, run.seeds), request)

    def interpolate(
        self,
        seed_a: int,
        seed_b: int,
        count: int = 5,
        duration: float | None = None,
        request: GenerationRequest | None = None,
        **options,
    ) -> GenerateOutput:
        """`count` clips between the clips of two seeds, by spherical interpolation of their
        starting noise (deterministic samplers give a smooth path; DDIM by default)."""
        if not isinstance(count, int) or count < 2:
            raise RequestError(f"count={count}: need at least 2 points")
        request = self.request(request, **options)
        _check_seed("seed_a", seed_a)
        _check_seed("seed_b", seed_b)
        shape = self._shape(1, duration)
        run = self._resolve(request, count, default_sampler="ddim")
        run.seeds = [seed_a] * count
        a, b = self.initial_noise(shape, [seed_a]), self.initial_noise(shape, [seed_b])
        x = torch.cat([slerp(a, b, w) for w in torch.linspace(0, 1, count).tolist()])
        return self._finish(self.decode(self._sample(run, x), run.seeds, self._mel_frames(duration)), request)


def _caller_level() -> int:
    """The `stacklevel` of the first frame outside this package, so a warning names the
    caller's line rather than the pipeline's."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _number(value) -> float:
    """`value` as a float; NaN (which every range check refuses) for what is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _whole(value) -> int | None:
    """`value` as an int when it is a whole number (not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _check_count(n) -> None:
    if _whole(n) is None or n < 1:
        raise RequestError(f"n={n}: must be a whole number of clips, at least 1")


def _check_seed(name: str, seed) -> None:
    if _whole(seed) is None or not 0 <= seed <= MAX_SEED:
        raise RequestError(f"{name}={seed}: must be a whole number between 0 and 2**63 - 1")


def _check_interval(interval) -> tuple[float, float]:
    """A guidance interval (low, high) of noise levels, checked: 0 <= low <= high <= 1."""
    try:
        low, high = (_number(v) for v in interval)
    except (TypeError, ValueError):
        low = high = math.nan
    if not 0.0 <= low <= high <= 1.0:
        raise RequestError(
            f"guidance_interval={interval!r}: give two noise levels (low, high) with 0 <= low <= high <= 1, "
            "e.g. (0.3, 1.0) to guide only the noisier steps; (0, 1) guides every step"
        )
    return (low, high)


def _seconds(name: str, value) -> float:
    """A duration in seconds, checked: more than 0 and at most `MAX_SECONDS`."""
    seconds = _number(value)
    if not 0 < seconds <= MAX_SECONDS:
        raise RequestError(f"{name}={seconds:g} s: must be more than 0 and at most {MAX_SECONDS:g} seconds")
    return seconds


def _check_resample_steps(resample_steps) -> None:
    if _whole(resample_steps) is None or not 1 <= resample_steps <= 100:
        raise RequestError(
            f"resample_steps={resample_steps}: must be a whole number between 1 and 100 (RePaint resampling per step)"
        )


INPAINT_SAMPLER = "ddpm"  # RePaint's ancestral steps, unless a request names another sampler


@dataclasses.dataclass
class GenerationRequest:
    """Every sampling option of one call, resolved once. Pipeline methods take these fields as
    keyword options (and `request=`); the CLI and the demo build one and pass it.
    `conditions` and `negatives` map condition names to user values (see `Conditioner.prepare`)."""

    conditions: dict[str, Any] = dataclasses.field(default_factory=dict)
    negatives: dict[str, Any] = dataclasses.field(default_factory=dict)
    sampler: str | None = None  # None: the model's (ddpm for inpainting and continuation)
    steps: int | None = None
    guidance: float | None = None
    guidance_interval: tuple[float, float] | None = None  # None: the model's sampling.guidance_interval
    guide: tuple[str, ...] | None = (
        None  # guide towards these conditions at `guidance`; the rest asked at `rest_guidance`
    )
    rest_guidance: float | None = (
        None  # None: the model's sampling.rest_guidance (1: the rest followed as asked, unguided)
    )
    seed: int = 0
    normalize: bool = False  # True: scale each clip's peak to NORMALIZE_PEAK (default: the model's level)
    progress: bool = False
    callback: Callable[[dict], None] | None = None

    @classmethod
    def of(cls, request: GenerationRequest | None = None, **options) -> GenerationRequest:
        """`request` with keyword options on top: the fields above, `negative_<condition>=` and
        any other name as a condition. A None option means "not given"."""
        request = request or cls()
        fields = {f.name for f in dataclasses.fields(cls)} - {"conditions", "negatives"}
        conditions, negatives, settings = dict(request.conditions), dict(request.negatives), {}
        for key, value in options.items():
            if value is None:
                continue
            if key in fields:
                settings[key] = value
            elif key.startswith("negative_"):
                negatives[key[len("negative_") :]] = value
            else:
                conditions[key] = value
        for key in ("steps", "seed"):
            if isinstance(settings.get(key), float) and settings[key].is_integer():
                settings[key] = int(settings[key])
        return dataclasses.replace(request, conditions=conditions, negatives=negatives, **settings)


@dataclasses.dataclass
class _Sampling:
    """A request made concrete for one batch (see `Pipeline._resolve`)."""

    model: Callable
    cond: dict
    steps: int
    sampler: str
    seeds: list[int]
    request: GenerationRequest
    shift: float

    def noise(self, offset: int = 10_000_019) -> Callable[[torch.Tensor], torch.Tensor]:
        """Fresh noise per item from its own generator, so items do not depend on the batch."""
        generators = [torch.Generator().manual_seed(s + offset) for s in self.seeds]

        def draw(like: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.randn(like.shape[1:], generator=g) for g in generators]).to(like)

        return draw

    @contextlib.contextmanager
    def progress(self, total: int):
        """Inference mode, a progress bar over `total` steps (if asked) and the request's callback."""
        bar = tqdm(total=total, disable=not self.request.progress, desc="sampling", unit="step", leave=False)
        callback = self.request.callback

        def on_step(info: dict) -> None:
            bar.update(1)
            if callback is not None:
                callback(info)

        try:
            with torch.inference_mode():
                yield on_step
        finally:
            bar.close()
