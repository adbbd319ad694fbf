"""`Pipeline`: a diffusion model, its space (waveform, mel + vocoder, or latent + autoencoder +
vocoder) and its sampler settings, composed in one place. Loads from a checkpoint directory or a
bundled name, generates audio, saves itself.

    pipe = Pipeline.from_pretrained("digits")
    out = pipe.generate(label="seven", n=4, steps=20, seed=0)
    out.audio  # [n, channels, samples] float32 in [-1, 1]; out.sample_rate
    out.settings  # every setting the call used (`audiodiff.request.Resolved`)

Output keeps the model's own level. A clip whose peak would go over full scale is scaled down
(one gain for the clip, so no clipping distortion) to a peak of `PEAK_GUARD`; `normalize=True`
scales every clip's peak to `NORMALIZE_PEAK` instead. Editing (vary, inpaint, continue, loop,
interpolate) lives in `audiodiff.editing`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from audiodiff.analysis import Analysis
from audiodiff.audio import AudioError, MelSpec, load_audio, normalize_peak, resample, to_channels
from audiodiff.bundled import BUNDLED_DIR, bundled_path
from audiodiff.checkpoint import CONFIG, WEIGHTS, save_tensors, write_checkpoint, write_json
from audiodiff.config import ConfigError, DiffusionRunConfig, to_dict
from audiodiff.diffusion.distill import GUIDANCE
from audiodiff.diffusion.objective import OBJECTIVES, angles_for_steps
from audiodiff.diffusion.samplers import get_sampler, guided
from audiodiff.editing import Editing
from audiodiff.models.conditioning import ConditionError, ConditionSpec
from audiodiff.models.diffusion import MAX_PARAMETERS, RUN_SECTIONS, build_model, load_diffusion, parse_run_config
from audiodiff.precision import autocast_dtype
from audiodiff.request import (
    MAX_SECONDS,
    MAX_SEED,
    GenerateOutput,
    GenerationRequest,
    RequestError,
    Resolved,
    check_count,
    check_seconds,
)
from audiodiff.spaces import AUTOENCODER_FOLDER, Space, space_class
from audiodiff.vocoder import GriffinLimVocoder, Vocoder

__all__ = [
    "GenerateOutput",
    "GenerationRequest",
    "Pipeline",
    "RequestError",
    "bundled_path",
    "BUNDLED_DIR",
    # importable from here as before the model layer and the request module took them
    "AUTOENCODER_FOLDER",
    "MAX_PARAMETERS",
    "MAX_SECONDS",
    "MAX_SEED",
    "RUN_SECTIONS",
    "build_model",
    "parse_run_config",
]

LONG_FACTOR = 1.5  # beyond this many training lengths, generate window by window
PEAK_GUARD = 0.99  # a clip whose peak is over 1 is scaled down to this peak
NORMALIZE_PEAK = 0.95  # normalize=True: every clip's peak


def guard_peak(audio: torch.Tensor) -> torch.Tensor:
    """Each clip `[n, channels, samples]` whose peak is over 1 scaled down to `PEAK_GUARD` (one
    gain for the clip, so nothing is clipped); the others unchanged."""
    peak = audio.abs().amax(dim=(-2, -1), keepdim=True)
    return torch.where(peak > 1.0, audio * (PEAK_GUARD / peak.clamp_min(1.0)), audio)


def upsample_output(out: GenerateOutput, upsampler) -> GenerateOutput:
    """`out` through `upsampler` (an `audiodiff.upsampler.Upsampler`; None: unchanged), at its
    rate, with the clipping guard again."""
    if upsampler is not None:
        out.audio = guard_peak(upsampler(out.audio, out.sample_rate).float().cpu())
        out.sample_rate = upsampler.sample_rate
    return out


class Pipeline(Editing, Analysis):
    def __init__(
        self,
        model: torch.nn.Module,
        config: DiffusionRunConfig,
        vocoder: Vocoder | None = None,
        info: dict | None = None,
        device: str | torch.device = "cpu",
        autoencoder=None,
        precision: str = "auto",
        channels_last: bool = False,
        compile: bool = False,
        upsampler=None,
    ):
        """`vocoder` (mel and latent models; Griffin-Lim when None) and `autoencoder` (an
        `audiodiff.latent.Autoencoder`, required by latent models) join the model through its
        space (`audiodiff.spaces`), which checks they fit. `upsampler` (an
        `audiodiff.upsampler.Upsampler` from the model's rate) extends every result to its rate.
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
        where = self.info.get("path", "config")
        self.space: Space = space_class(config.data).join(config, vocoder, autoencoder, where).to(self.device)
        self.precision = precision
        self._autocast_dtype()  # a bad name fails here, not at the first call
        self.channels_last = bool(channels_last)
        if self.channels_last and config.model.dims == 2:
            self.model.to(memory_format=torch.channels_last)
        self.compile = bool(compile)
        self._compiled = None
        self.upsampler = None
        if upsampler is not None:
            self.set_upsampler(upsampler)

    def set_upsampler(self, upsampler) -> Pipeline:
        """Extend every result to the upsampler's rate (a bundled name such as "upsampler-44k", a
        checkpoint, an `Upsampler`, or None for none); it must take this model's rate."""
        if isinstance(upsampler, (str, os.PathLike)):
            from audiodiff.upsampler import Upsampler

            upsampler = Upsampler.from_pretrained(upsampler)
        if upsampler is not None and upsampler.input_rate != self.sample_rate:
            from audiodiff.upsampler import UpsamplerError

            raise UpsamplerError(
                f"the upsampler extends {upsampler.input_rate} Hz audio and this model makes {self.sample_rate} Hz; "
                "use an upsampler trained from the model's rate (recipes/upsampler-44k, model.input_rate)"
            )
        self.upsampler = upsampler.to(self.device) if upsampler is not None else None
        return self

    @property
    def output_rate(self) -> int:
        """The rate results come at: the upsampler's when there is one, else the model's."""
        return self.upsampler.sample_rate if self.upsampler is not None else self.sample_rate

    def merge_adapters(self) -> Pipeline:
        """Fold the loaded adapters into the weights at their scales: sampling then costs what
        the base model costs (the scales can no longer change)."""
        from audiodiff.adapters import merge_adapters

        merge_adapters(self.model)
        self._compiled = None
        return self

    @property
    def vocoder(self) -> Vocoder | None:
        """The vocoder of a mel or latent model (None for waveform models)."""
        return self.space.vocoder

    @property
    def autoencoder(self):
        """The mel autoencoder of a latent model (None otherwise)."""
        return self.space.autoencoder

    @property
    def mel_spec(self) -> MelSpec | None:
        """The MelSpec of a mel or latent model (None for waveform models)."""
        return self.space.mel_spec

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
        adapters: list | dict | None = None,
        adapter_scale: float = 1.0,
        upsampler=None,
    ) -> Pipeline:
        """A bundled model name (e.g. "digits"), a checkpoint directory or a run directory.
        `adapters`: adapter run directories (each at `adapter_scale`) or {path: scale}, attached
        and active together (see `audiodiff.adapters`; `merge_adapters()` folds them in).
        `upsampler`: a bundled name ("upsampler-44k") or checkpoint that extends every result to
        its rate (`set_upsampler`).
        The space's parts come from the checkpoint (a vocoder it names; a latent model's
        `autoencoder/` or bundled autoencoder) unless `vocoder` / `autoencoder` (objects or paths)
        are given. `precision`, `channels_last` and `compile`: see `Pipeline`."""
        model, config, info = load_diffusion(name_or_path)
        if adapters:
            from audiodiff.adapters import load_adapters, weights_digest

            scales = dict(adapters) if isinstance(adapters, dict) else {str(path): adapter_scale for path in adapters}
            info["adapters"] = load_adapters(model, scales, weights_digest(model))
        folder = Path(info["path"])  # load_diffusion resolved it
        parts = space_class(config.data).load_parts(folder, config, vocoder, autoencoder)
        return cls(
            model,
            config,
            info=info,
            device=device,
            precision=precision,
            channels_last=channels_last,
            compile=compile,
            upsampler=upsampler,
            **parts,
        )

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

    def condition_specs(self) -> list[ConditionSpec]:
        """How front-ends offer this model's conditions (the CLI's `--cond`, the demo's form)."""
        return [spec for spec in self.model.conditioner.specs() if spec.name != GUIDANCE]

    def default_duration(self) -> float:
        return self.config.data.segment_seconds

    @property
    def window_samples(self) -> int:
        """Samples of one training-length clip."""
        return int(round(self.default_duration() * self.sample_rate))

    def _shape(self, n: int, duration: float | None) -> tuple[int, ...]:
        """Model-space shape of n clips of `duration` seconds (None: the training length)."""
        return self.space.shape(n, self._samples(duration))

    def _samples(self, duration: float | None) -> int:
        """Samples of a clip of `duration` seconds (None: the training length)."""
        seconds = self.default_duration() if duration is None else check_seconds("duration", duration)
        return int(round(seconds * self.sample_rate))

    def _frames(self, duration: float | None) -> int | None:
        """Mel frames of a clip of `duration` (None: the training length); None without a mel."""
        frames = self.space.frames(self._samples(duration))
        return max(1, frames) if frames is not None else None

    # -- generation

    def resolve(
        self, request: GenerationRequest | None = None, n: int = 1, default_sampler: str | None = None, **options
    ) -> Resolved:
        """Every setting of a call, filled once from the options (on top of `request`) and this
        model's config, and checked: what `GenerateOutput.settings` returns."""
        request = GenerationRequest.of(request, **options)
        return request.resolve(
            self.config,
            n,
            takes_guidance=GUIDANCE in self.model.conditioner.conditions,
            default_sampler=default_sampler,
            space=repr(self.space),
            where=self.info.get("path", "config"),
        )

    def _notice_unconditioned(self, settings: Resolved) -> None:
        """Warn when a conditioned model is asked for nothing: it then samples unconditionally."""
        if self.conditions and not settings.conditions and not settings.negatives:
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

    def _run(self, settings: Resolved, request: GenerationRequest) -> _Run:
        """Resolved settings made into tensors for their batch: the guided sampler-level model and
        the condition batch."""
        self._notice_unconditioned(settings)
        n = len(settings.seeds)
        conditioner = self.model.conditioner
        network = OBJECTIVES[settings.objective].as_model(self._network())
        if settings.takes_guidance:  # a guidance-distilled student: the scale is an input, one call per step
            cond = conditioner.prepare(n, **{GUIDANCE: settings.guidance, **settings.conditions})
            model = network
        else:
            negative = conditioner.prepare(n, **settings.rest)
            cond = conditioner.prepare(n, **settings.conditions)
            scale = settings.guidance if cond or negative else 1.0  # with nothing asked, nothing to guide towards
            model = guided(network, scale, negative, settings.guidance_interval, settings.rest_guidance)
        return _Run(model, cond, settings, request.progress, request.callback)

    def _start(
        self, request: GenerationRequest | None, n: int, default_sampler: str | None = None, **options
    ) -> tuple[_Run, GenerationRequest]:
        request = GenerationRequest.of(request, **options)
        settings = self.resolve(request, n, default_sampler)
        return self._run(settings, request), request

    def generate(
        self,
        n: int = 1,
        duration: float | None = None,
        request: GenerationRequest | None = None,
        noise: torch.Tensor | None = None,
        **options,
    ) -> GenerateOutput:
        """Sample `n` clips. `options` are the model's conditions (label=, text=, numbers),
        negatives (negative_label=, negative_text=, ...) and the `GenerationRequest` fields.
        Item i uses seed `seed + i`, so a seed gives the same audio at any batch size. Conditions
        left out are unconditional (a warning says so when none is given). A duration longer than
        the training clips is generated window by window, each continuing the last. `noise`
        (model-space `[n, ...]`, e.g. from `invert`) replaces the seeds' starting noise."""
        check_count(n)
        shape = self._shape(n, duration)
        request = self._curve_shorthand(GenerationRequest.of(request, **options), shape)
        self._check_curve_length(request, shape)
        run, request = self._start(request, n)
        return self._finish(self.decode(self._sample_new(run, shape, noise), run, self._frames(duration)), request)

    def generate_kit(
        self, labels: list[str] | None = None, seed: int = 0, request: GenerationRequest | None = None, **options
    ) -> dict[str, torch.Tensor]:
        """One clip per label (default: every label the model knows), one batch, seeds `seed`,
        `seed + 1`, ...: a whole kit at once. Returns {label: audio `[channels, samples]`};
        `options` as for `generate` (the same numbers for every pad, e.g. velocity=100)."""
        labels = list(labels) if labels is not None else self.labels
        if not labels:
            raise ConditionError("generate_kit needs a model with labels (e.g. drums); this one has none")
        out = self.generate(n=len(labels), request=request, label=labels, seed=seed, **options)
        return dict(zip(labels, out.audio))

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

    def _sample_new(self, run: _Run, shape: tuple[int, ...], noise: torch.Tensor | None = None) -> torch.Tensor:
        """New clips of `shape` in model space; longer than a window, window by window."""
        if noise is not None:  # given noise (e.g. inverted from a clip) is sampled in one pass, whatever its length
            return self._sample(run, self._given_noise(noise, shape))
        window = self._shape(shape[0], None)[-1]
        if self._beyond_a_window(shape):
            x = self._sample(run, self.initial_noise(shape[:-1] + (window,), run.settings.seeds))
            return self._extend(run, x, shape[-1])
        return self._sample(run, self.initial_noise(shape, run.settings.seeds))

    def _given_noise(self, noise, shape: tuple[int, ...]) -> torch.Tensor:
        noise = torch.as_tensor(noise, dtype=torch.float32)
        if tuple(noise.shape) != tuple(shape):
            raise RequestError(
                f"noise has shape {list(noise.shape)}; this call starts from {list(shape)} "
                "(the same n and duration as the clip it was inverted from)"
            )
        if not torch.isfinite(noise).all():
            raise RequestError("noise contains NaN or Inf values")
        return noise.to(self.device)

    def initial_noise(self, shape: tuple[int, ...], seeds) -> torch.Tensor:
        return torch.stack([torch.randn(shape[1:], generator=torch.Generator().manual_seed(s)) for s in seeds]).to(
            self.device
        )

    def _sample(self, run: _Run, x: torch.Tensor) -> torch.Tensor:
        settings = run.settings
        sample_fn = get_sampler(settings.sampler)
        with run.progress(settings.steps) as on_step:
            return sample_fn(
                run.model, x, angles_for_steps(settings.steps, settings.shift), run.cond, on_step, run.noise()
            )

    def decode(
        self, x: torch.Tensor, run: _Run | list[int], frames: int | None = None, seamless: bool = False
    ) -> GenerateOutput:
        """Model output -> audio at the model's level (the vocoder's own output for mel models,
        the samples for waveform models), with the clipping guard: a clip whose peak is over 1
        is scaled down to a peak of `PEAK_GUARD`, one gain for the clip, so nothing is clipped.
        Latents are decoded to mels first, cut to `frames` mel frames when given."""
        audio, mel = self.space.decode_seamless(x) if seamless else self.space.decode(x, frames)
        audio = guard_peak(audio.float().cpu())
        if isinstance(run, _Run):
            return self._output(audio, run.settings, mel)
        return GenerateOutput(audio, self.sample_rate, list(run), mel)

    def _output(self, audio: torch.Tensor, settings: Resolved, mel: torch.Tensor | None = None) -> GenerateOutput:
        return GenerateOutput(audio, self.sample_rate, list(settings.seeds), mel, settings)

    def _finish(self, out: GenerateOutput, request: GenerationRequest) -> GenerateOutput:
        """Through the upsampler when there is one (with the clipping guard again); with
        `request.normalize`, every result clip's peak at `NORMALIZE_PEAK` (kept audio of an edit
        included); otherwise the output as decoded."""
        upsample_output(out, self.upsampler)
        if request.normalize:
            out.audio = normalize_peak(out.audio, NORMALIZE_PEAK)
        return out

    # -- audio in

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
        changes = []
        if int(sample_rate) != self.sample_rate:
            changes.append(f"resampled from {int(sample_rate)} Hz to the model's {self.sample_rate} Hz")
        if audio.shape[1] != self.space.channels:
            changes.append(
                "mono, duplicated to both channels of this stereo model"
                if audio.shape[1] == 1
                else f"{audio.shape[1]} channels, mixed down to this mono model's one"
            )
        if changes:
            warnings.warn(f"{name}: {'; '.join(changes)}", stacklevel=3)
        audio = to_channels(resample(audio, int(sample_rate), self.sample_rate), self.space.channels, name)
        minimum = self.space.min_samples
        if audio.shape[-1] < minimum:
            raise AudioError(f"{name}: {audio.shape[-1]} samples is too short; need at least {minimum}")
        return audio

    def _encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio `[n, channels, samples]` -> model space (see `audiodiff.spaces`)."""
        return self.space.encode(audio.to(self.device))


def _caller_level() -> int:
    """The `stacklevel` of the first frame outside this package, so a warning names the
    caller's line rather than the pipeline's."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


@dataclasses.dataclass
class _Run:
    """Resolved settings made concrete for one batch (see `Pipeline._run`)."""

    model: Callable
    cond: dict
    settings: Resolved
    show_progress: bool = False
    callback: Callable[[dict], None] | None = None

    def noise(self, offset: int = 10_000_019) -> Callable[[torch.Tensor], torch.Tensor]:
        """Fresh noise per item from its own generator, so items do not depend on the batch."""
        generators = [torch.Generator().manual_seed(s + offset) for s in self.settings.seeds]

        def draw(like: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.randn(like.shape[1:], generator=g) for g in generators]).to(like)

        return draw

    @contextlib.contextmanager
    def progress(self, total: int):
        """Inference mode, a progress bar over `total` steps (if asked) and the request's callback."""
        bar = tqdm(total=total, disable=not self.show_progress, desc="sampling", unit="step", leave=False)
        callback = self.callback

        def on_step(info: dict) -> None:
            bar.update(1)
            if callback is not None:
                callback(info)

        try:
            with torch.inference_mode():
                yield on_step
        finally:
            bar.close()
