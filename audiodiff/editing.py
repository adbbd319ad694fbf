"""The pipeline's editing methods: variation, inpainting, continuation, loops, interpolation.

`Editing` is the part of `Pipeline` that starts from audio or from chosen noise; the algorithms
themselves (noising and sampling back, RePaint, slerp) are in `audiodiff.diffusion.editing`, and
everything that depends on the representation is asked of `self.space`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from audiodiff.audio import AudioError
from audiodiff.diffusion.editing import inpaint, slerp, vary
from audiodiff.diffusion.objective import HALF_PI
from audiodiff.diffusion.samplers import get_sampler
from audiodiff.request import (
    INPAINT_SAMPLER,
    GenerateOutput,
    GenerationRequest,
    RequestError,
    check_count,
    check_resample_steps,
    check_seconds,
    check_seed,
    number,
    whole,
)

__all__ = ["Editing", "MAX_PASS_FACTOR"]

MAX_PASS_FACTOR = 4.0  # editing takes at most this many training lengths in one pass
END_SLACK_SECONDS = 0.02  # inpaint end= this far past the clip means its end (mel models drop a last partial hop)


class Editing:
    """Editing methods of `Pipeline` (which supplies space, model, sampling and decoding)."""

    def _max_samples(self) -> int:
        return int(self.default_duration() * MAX_PASS_FACTOR * self.sample_rate)

    def _check_length(self, batch: torch.Tensor, verb: str, hint: str = "; trim it") -> None:
        if batch.shape[-1] > self._max_samples():
            raise RequestError(
                f"audio is {batch.shape[-1] / self.sample_rate:.1f} s; this model {verb} at most "
                f"{self._max_samples() / self.sample_rate:.1f} s in one pass{hint}"
            )

    def _splice(
        self, generated: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, fade_seconds: float = 0.01
    ) -> torch.Tensor:
        """Put the original audio back where mask is 0, with short linear crossfades."""
        length = generated.shape[-1]
        keep = F.pad(1 - mask.float(), (0, max(0, length - mask.numel())))[:length]
        width = max(1, int(fade_seconds * self.sample_rate))
        kernel = torch.ones(1, 1, width) / width
        # erode the kept region by the fade width, then blur: the fade happens inside the generated part
        keep = -F.max_pool1d(-keep[None, None], 2 * width + 1, 1, width)
        keep = F.conv1d(F.pad(keep, (width // 2, width - 1 - width // 2), mode="replicate"), kernel)[0, 0]
        keep = torch.maximum(keep.clamp(0, 1), 1 - F.pad(mask.float(), (0, max(0, length - mask.numel())))[:length])
        original = F.pad(original, (0, max(0, length - original.shape[-1])))[..., :length]
        return keep * original + (1 - keep) * generated

    def vary(
        self,
        audio,
        strength: float = 0.5,
        sample_rate: int | None = None,
        request: GenerationRequest | None = None,
        mode: str = "noise",
        **options,
    ) -> GenerateOutput:
        """Audio-to-audio variation. mode "noise" (SDEdit): noise the input to level `strength`,
        then sample back. mode "inversion": invert the input to its noise (DDIM), turn that noise
        towards fresh noise by `strength` (a rotation of strength x 90 degrees), and sample back
        with DDIM: small strengths keep the input's timing. strength 0 returns the input
        unchanged; 1 ignores it. `options` as for `generate`."""
        if not 0.0 <= number(strength) <= 1.0:
            raise RequestError(f"strength={strength}: must be between 0 (return the input) and 1 (ignore it)")
        if mode not in ("noise", "inversion"):
            raise RequestError(f"mode={mode!r}: choose 'noise' (noise the input, SDEdit) or 'inversion'")
        request = GenerationRequest.of(request, **options).check()
        batch = self._audio_batch(audio, sample_rate)
        self._check_length(batch, "varies")
        settings = self.resolve(request, batch.shape[0])
        if strength == 0:  # nothing to sample
            out = self._output(batch.clone(), settings, self.space.preview_mel(batch))
            return self._finish(out, request)
        if mode == "inversion":
            return self._vary_by_inversion(batch, float(strength), request)
        run = self._run(settings, request)
        with run.progress(max(1, round(settings.steps * strength))) as on_step:
            x = vary(
                run.model,
                self._encode(batch),
                float(strength),
                settings.steps,
                run.cond,
                run.noise(),
                settings.sampler,
                settings.shift,
                on_step,
            )
        return self._finish(self.decode(x, run, self.space.frames(batch.shape[-1])), request)

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
        check_resample_steps(resample_steps)
        request = GenerationRequest.of(request, **options).check()
        batch = self._audio_batch(audio, sample_rate)
        length = batch.shape[-1]
        sample_mask = self._sample_mask(mask, start, end, length)
        self._check_length(batch, "inpaints", "; trim it around the span")
        run, request = self._start(request, batch.shape[0], default_sampler=INPAINT_SAMPLER)
        known = self._encode(batch)
        model_mask = self.space.mask(sample_mask, known.shape[-1]).to(known.device)
        x = self._repaint(run, known, model_mask, run.noise(), resample_steps)
        out = self.decode(x, run, self.space.frames(length))
        out.audio = self._splice(out.audio, batch[..., : out.audio.shape[-1]], sample_mask[: out.audio.shape[-1]])
        if out.audio.shape[-1] < length:  # mel models drop the last partial hop; keep it from the input
            out.audio = torch.cat([out.audio, batch[..., out.audio.shape[-1] :]], dim=-1)
        return self._finish(out, request)

    @staticmethod
    def _repaint(run, known: torch.Tensor, mask: torch.Tensor, noise, resample_steps: int) -> torch.Tensor:
        """RePaint over `known` (mask 1 = regenerate) with the run's sampler, steps and progress."""
        with run.progress(run.settings.steps) as on_step:
            return inpaint(
                run.model,
                known,
                mask,
                run.settings.steps,
                run.cond,
                noise,
                resample_steps,
                shift=run.settings.shift,
                callback=on_step,
                sampler=run.settings.sampler,
            )

    def _sample_mask(self, mask, start, end, length: int) -> torch.Tensor:
        if mask is None:
            if start is None and end is None:
                raise RequestError("inpaint needs a mask, or start=/end= seconds of the span to regenerate")
            seconds = length / self.sample_rate
            begin = 0.0 if start is None else float(start)
            finish = seconds if end is None else float(end)
            if seconds < finish <= seconds + END_SLACK_SECONDS:  # "to the end" of a clip a frame short of it
                finish = seconds
            if (
                not (math.isfinite(begin) and math.isfinite(finish))
                or not 0 <= round(begin * self.sample_rate) < round(finish * self.sample_rate) <= length
            ):
                raise RequestError(
                    f"span {begin:g}..{finish:g} s is outside the audio (0..{seconds:.3f} s) or empty; "
                    f"give 0 <= start < end <= {seconds:.3f}"
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
        seconds = check_seconds("seconds", seconds)
        check_resample_steps(resample_steps)
        request = GenerationRequest.of(request, **options).check()
        batch = self._audio_batch(audio, sample_rate)
        window = self._shape(1, None)[-1]
        # whole frames: what is kept ends where the continuation starts; the model's context is
        # whole positions (latent frames), the continuation overlaps the rest and the input is spliced back
        batch = batch[..., : self.space.whole_frames(batch.shape[-1])]
        context = batch[..., : self.space.whole_positions(batch.shape[-1])]
        if context.shape[-1] < self.space.min_samples:
            need = max(self.space.samples_per_position, self.space.min_samples)
            raise AudioError(f"audio: {batch.shape[-1]} samples is too short to continue; need at least {need}")
        known = self._encode(context)
        run, request = self._start(request, batch.shape[0], default_sampler=INPAINT_SAMPLER)
        added = self._shape(1, float(seconds) + (batch.shape[-1] - context.shape[-1]) / self.sample_rate)[-1]
        start = known[..., -window // 2 :] if known.shape[-1] > window // 2 else known
        x = self._extend(run, start, start.shape[-1] + added, resample_steps)
        full = torch.cat([known, x[..., -added:]], dim=-1)
        frames = self.space.frames(batch.shape[-1])
        out = self.decode(full, run, frames + self._frames(float(seconds)) if frames is not None else None)
        mask = torch.zeros(out.audio.shape[-1])
        mask[batch.shape[-1] :] = 1
        out.audio = self._splice(out.audio, batch, mask)
        return self._finish(out, request)

    def _extend(self, run, x: torch.Tensor, target: int, resample_steps: int = 2) -> torch.Tensor:
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
            filled = self._repaint(run, known, mask, noise, resample_steps)
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
        check_count(n)
        shape = self._shape(n, duration)
        request = self._curve_shorthand(GenerationRequest.of(request, **options), shape)
        self._check_curve_length(request, shape)
        run, request = self._start(request, n)
        x = self._sample_new(run, shape)
        heal = dataclasses.replace(
            run, settings=dataclasses.replace(run.settings, sampler=request.sampler or INPAINT_SAMPLER)
        )
        length = x.shape[-1]
        rolled = torch.roll(x, length // 2, dims=-1)
        mask = torch.zeros(length, device=x.device)
        half_seam = max(1, int(length * seam_fraction / 2))
        mask[length // 2 - half_seam : length // 2 + half_seam] = 1
        healed = self._repaint(heal, rolled, mask, heal.noise(), 2)
        x = torch.roll(healed, -(length // 2), dims=-1)
        return self._finish(self.decode(x, run, seamless=True), request)

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
        request = GenerationRequest.of(request, **options)
        check_seed("seed_a", seed_a)
        check_seed("seed_b", seed_b)
        shape = self._shape(1, duration)
        settings = dataclasses.replace(self.resolve(request, count, default_sampler="ddim"), seeds=(seed_a,) * count)
        run = self._run(settings, request)
        a, b = self.initial_noise(shape, [seed_a]), self.initial_noise(shape, [seed_b])
        x = torch.cat([slerp(a, b, w) for w in torch.linspace(0, 1, count).tolist()])
        return self._finish(self.decode(self._sample(run, x), run, self._frames(duration)), request)

    def mix(
        self,
        first: dict,
        second: dict,
        at: float = 0.5,
        n: int = 1,
        duration: float | None = None,
        request: GenerationRequest | None = None,
        **options,
    ) -> GenerateOutput:
        """Conditions mixed along the trajectory (CRASH's class mixing): sampling starts under
        `first`'s conditions and switches to `second`'s once the noise level (2θ/π, as in
        `guidance_interval`) falls to `at`. The early steps set the coarse shape (envelope,
        attack, register), the late ones the detail: `mix({"label": "kick"}, {"label": "snare"},
        at=0.6)` is a kick's body with a snare's surface. `at=1` is `generate(**second)` and
        `at=0` is `generate(**first)`, bit for bit; `options` (seed, steps, numbers) apply to both."""
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not 0.0 <= at <= 1.0:
            raise RequestError(f"at={at!r}: the noise level of the switch, from 0 (all `first`) to 1 (all `second`)")
        for name, conditions in (("first", first), ("second", second)):
            if not isinstance(conditions, dict):
                raise RequestError(f"{name}={conditions!r}: give the conditions as a dict, e.g. {{'label': 'kick'}}")
        check_count(n)
        shape = self._shape(n, duration)
        base = GenerationRequest.of(request, **options)
        run_a, request = self._start(GenerationRequest.of(base, **first), n)
        run_b, _ = self._start(GenerationRequest.of(base, **second), n)

        def switching(x: torch.Tensor, theta: torch.Tensor, cond: dict) -> torch.Tensor:
            run = run_a if float(theta.flatten()[0]) / HALF_PI > at + 1e-6 else run_b  # float32 θ
            return run.model(x, theta, run.cond)

        x = self._sample(dataclasses.replace(run_a, model=switching), self.initial_noise(shape, run_a.settings.seeds))
        return self._finish(self.decode(x, run_a, self._frames(duration)), request)

    # -- inversion

    def invert(
        self,
        audio,
        steps: int = 32,
        sample_rate: int | None = None,
        strength: float = 1.0,
        iterations: int = 3,
        request: GenerationRequest | None = None,
        **options,
    ) -> torch.Tensor:
        """The model-space noise `[n, ...]` that DDIM turns into `audio`:
        `generate(noise=z, sampler="ddim", steps=steps, duration=<the clip's>, <same conditions
        and guidance>)` makes the clip again. `strength` < 1 inverts only up to that noise level
        (what `edit` regenerates from). `iterations`: fixed-point refinements per step
        (`audiodiff.diffusion.inversion`); each costs one more network call a step."""
        from audiodiff.diffusion.inversion import inversion_angles, invert

        if not 0.0 < number(strength) <= 1.0:
            raise RequestError(f"strength={strength}: the noise level to invert to, more than 0 and at most 1")
        if whole(iterations) is None or not 0 <= iterations <= 20:
            raise RequestError(f"iterations={iterations}: a whole number from 0 (plain DDIM inversion) to 20")
        request = GenerationRequest.of(request, steps=steps, **options).check()
        batch = self._audio_batch(audio, sample_rate)
        self._check_length(batch, "inverts", "; trim it, or invert it in pieces")
        request = self._curve_shorthand(request, self.space.shape(batch.shape[0], batch.shape[-1]))
        run = self._run(self.resolve(request, batch.shape[0]), request)
        angles = inversion_angles(run.settings.steps, run.settings.shift, float(strength))
        with run.progress(run.settings.steps) as on_step:
            return invert(run.model, self._encode(batch), angles, run.cond, iterations, on_step)

    def edit(
        self,
        audio,
        source: dict | None = None,
        target: dict | None = None,
        strength: float = 1.0,
        steps: int = 32,
        sample_rate: int | None = None,
        source_guidance: float = 1.0,
        iterations: int = 3,
        away_from_source: bool = False,
        request: GenerationRequest | None = None,
        **options,
    ) -> GenerateOutput:
        """Edit by inversion: invert `audio` under the `source` conditions (at `source_guidance`;
        1 is the plain conditional ODE) up to noise level `strength`, then sample back with DDIM
        on the same grid under the `target` conditions (at the request's guidance). What the
        target does not change (timing; on curve models the pitch line, given as a curve) stays
        the clip's. `away_from_source=True` guides from the source conditions towards the target
        ones (the source as the negative) instead of from none, so guidance pushes along exactly
        what the edit changes. `options` are sampling options (guidance=, seed=, negative_*=, ...)."""
        from audiodiff.diffusion.inversion import inversion_angles

        request = GenerationRequest.of(request, steps=steps, **options).check()
        plain = dataclasses.replace(request, conditions={}, negatives={})
        inverting = GenerationRequest.of(plain, guidance=source_guidance, guide=(), **dict(source or {}))
        batch = self._audio_batch(audio, sample_rate)  # read once; invert takes it at the model's rate
        noise = self.invert(batch, steps, self.sample_rate, strength, iterations, request=inverting)
        length = batch.shape[-1]
        negatives = {f"negative_{name}": value for name, value in (source or {}).items()} if away_from_source else {}
        wanted = GenerationRequest.of(
            dataclasses.replace(plain, negatives=dict(request.negatives)),
            sampler="ddim",
            **dict(target or {}),
            **negatives,
        )
        wanted = self._curve_shorthand(wanted, self.space.shape(noise.shape[0], length))
        run = self._run(self.resolve(wanted, noise.shape[0]), wanted)
        angles = inversion_angles(run.settings.steps, run.settings.shift, float(strength)).flip(0)
        with run.progress(run.settings.steps) as on_step:
            x = get_sampler("ddim")(run.model, noise, angles, run.cond, on_step, run.noise())
        return self._finish(self.decode(x, run, self.space.frames(length)), wanted)

    def _vary_by_inversion(self, batch: torch.Tensor, strength: float, request: GenerationRequest) -> GenerateOutput:
        steps = request.steps or 32
        noise = self.invert(batch, steps, self.sample_rate, request=dataclasses.replace(request, steps=steps))
        ddim = dataclasses.replace(request, sampler="ddim", steps=steps)
        run = self._run(self.resolve(ddim, batch.shape[0]), ddim)
        fresh = self.initial_noise(tuple(noise.shape), run.settings.seeds)
        angle = strength * math.pi / 2
        start = math.cos(angle) * noise + math.sin(angle) * fresh
        return self._finish(self.decode(self._sample(run, start), run, self.space.frames(batch.shape[-1])), request)
