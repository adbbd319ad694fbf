"""What a pipeline measures from real audio: the control curves a recording carries
(`curves_from`, for models with curves) and its likelihood under the model (`log_likelihood`).
A mixin of `Pipeline`, as `Editing` is: it reads the audio through the pipeline's
`_audio_batch` and `_encode`."""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from audiodiff.diffusion.objective import OBJECTIVES
from audiodiff.models.condition_base import ConditionError

__all__ = ["Analysis"]


class Analysis:
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
        """Curve frames per second: the space's (the mel frame rate), else the bundled one."""
        from audiodiff.controls import FRAME_RATE

        return self.space.frame_rate or FRAME_RATE

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
        x = self._encode(batch)[..., : self._shape(1, None)[-1]]
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
            "space": self.space.description,
            "steps": steps,
            "probes": probes,
            "t_min": t_min,
        }
