"""The Edit tab: variation, inpainting and outpainting, continuation and edit by inversion of
one upload, over `Pipeline.vary`, `inpaint`, `continue_` and `edit`.

`EditActions` is the part of `DemoActions` behind that tab (as `DrumActions` is behind the Drums
tab): `DemoActions` supplies the store, the limits, the upload checks, the condition widgets, the
full-band upsampler and the result folders. Every edit reads the upload at the model's rate and
channels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gradio as gr
import torch

from audiodiff.demo.store import _check_at_most, _seconds, _step_reporter, _user_errors
from audiodiff.pipeline import GenerateOutput, Pipeline

__all__ = ["EditActions"]


class EditActions:
    """The Edit tab's handlers, mixed into `DemoActions`. Each returns the result's wav, the
    before and after spectrograms and a status."""

    def _edit_input(self, pipe: Pipeline, path: str | None) -> torch.Tensor:
        return self.read_upload(path, pipe.sample_rate, pipe.space.channels)

    def _edit_result(
        self, pipe: Pipeline, before: torch.Tensor, out: GenerateOutput, what: str, elapsed: float
    ) -> list[Any]:
        folder = self._request_dir()
        _, before_png = self._write(folder, "before", before, pipe.sample_rate, "before")
        after_wav, after_png = self._write(folder, "after", out.audio[0], out.sample_rate, f"after: {what}")
        status = (
            f"{what}: {_seconds(before.shape[-1] / pipe.sample_rate)} in, "
            f"{_seconds(out.audio.shape[-1] / out.sample_rate)} out, in {elapsed:.1f} s"
        )
        return [after_wav, before_png, after_png, status]

    def _edit(
        self, name: str, path, conditions: dict, steps, seed, full_band, progress, run: Callable, what: str
    ) -> list[Any]:
        with _user_errors():
            progress(0, desc="loading the model")
            pipe = self.store.get(name)
            upsampler = self._full_band(name, pipe, full_band)
            audio = self._edit_input(pipe, path)
            asked, negatives = self._conditions(pipe, conditions)
            request = self._request(asked, steps, seed, _step_reporter(progress, what), negatives=negatives)
            started = time.perf_counter()
            out = self._upsample(run(pipe, audio, request), upsampler)
            return self._edit_result(pipe, audio, out, what, time.perf_counter() - started)

    def vary(
        self,
        model: str,
        audio_path: str | None,
        strength: float,
        steps: float,
        seed: float,
        method: str = "noise",
        full_band: bool = False,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """Audio-to-audio variation; strength 0 returns the input, 1 ignores it. `method`:
        "noise" (noise the input, then sample back) or "inversion" (DDIM inversion: keeps timing)."""
        if method not in ("noise", "inversion"):
            raise gr.Error(f"method {method!r}: choose noise or inversion")

        def run(pipe, audio, request):
            return pipe.vary(audio, float(strength), pipe.sample_rate, request=request, mode=method)

        what = f"variation (strength {float(strength):g}, by {method})"
        return self._edit(model, audio_path, conditions, steps, seed, full_band, progress, run, what)

    def inpaint(
        self,
        model: str,
        audio_path: str | None,
        start: float,
        end: float,
        region: str,
        steps: float,
        seed: float,
        full_band: bool = False,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """Regenerate the span `start`..`end` seconds ("inside": inpainting) or everything but
        it ("outside": outpainting), keeping the rest."""
        if region not in ("inside", "outside"):
            raise gr.Error(f"region={region!r}: choose 'inside' (inpaint the span) or 'outside' (outpaint around it)")

        def run(pipe, audio, request):
            length = audio.shape[-1]
            first, last = int(round(float(start) * pipe.sample_rate)), int(round(float(end) * pipe.sample_rate))
            if not 0 <= first < last <= length:
                raise ValueError(
                    f"span {float(start):g}..{float(end):g} s is empty or outside the audio (0..{length / pipe.sample_rate:.2f} s)"
                )
            mask = torch.zeros(length) if region == "inside" else torch.ones(length)
            mask[first:last] = 1.0 if region == "inside" else 0.0
            return pipe.inpaint(audio, mask=mask, sample_rate=pipe.sample_rate, request=request)

        what = f"{'inpainting' if region == 'inside' else 'outpainting'} {float(start):g}..{float(end):g} s"
        return self._edit(model, audio_path, conditions, steps, seed, full_band, progress, run, what)

    def continue_(
        self,
        model: str,
        audio_path: str | None,
        seconds: float,
        steps: float,
        seed: float,
        full_band: bool = False,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """Continue the audio by `seconds`. Every edit takes `full_band`, as `generate` does."""
        _check_at_most("continuation", seconds, self.limits.max_seconds, " s")

        def run(pipe, audio, request):
            return pipe.continue_(audio, seconds=float(seconds), sample_rate=pipe.sample_rate, request=request)

        what = f"continuation by {float(seconds):g} s"
        return self._edit(model, audio_path, conditions, steps, seed, full_band, progress, run, what)

    def inversion_source(self, model: str) -> dict:
        """Settings of Edit by inversion's source dropdown for `model`: its labels, the first
        chosen; for a model without labels, none, and a note saying so."""
        with _user_errors():
            labels = self.store.get(model).labels
        if not labels:
            return dict(choices=[], value=None, info=f"{model} has no labels: pick a model with labels for this edit")
        return dict(choices=labels, value=labels[0], info="the label the clip is inverted under")

    def edit_by_inversion(
        self,
        model: str,
        audio_path: str | None,
        source_label: str | None,
        strength: float,
        steps: float,
        seed: float,
        away_from_source: bool = False,
        full_band: bool = False,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """Edit by inversion (`Pipeline.edit`): invert the audio up to noise level `strength`
        under what it is now, then sample it back under the form's conditions (the target),
        keeping its timing. The source is the target with `source_label` as its label, so only
        the label changes ("this flute note into brass": the pitch stays). `away_from_source`
        guides from the source towards the target instead of from no conditions."""
        target_label = conditions.get("label") or "no label"

        def run(pipe, audio, request):
            if not pipe.labels:
                raise gr.Error(
                    f"{model} has no labels, so there is no source label to invert from; pick a model trained "
                    "with labels (digits, notes), or use Variation with the inversion method"
                )
            if not source_label:
                raise gr.Error(f"no source label: pick what the clip is now, one of {pipe.labels}")
            target = dict(request.conditions)
            source = {name: value for name, value in target.items() if name != "label"} | {"label": source_label}
            return pipe.edit(
                audio,
                source=source,
                target=target,
                strength=float(strength),
                steps=request.steps,
                sample_rate=pipe.sample_rate,
                away_from_source=bool(away_from_source),
                request=request,
            )

        away = ", away from the source" if away_from_source else ""
        what = f"edit by inversion: {source_label} -> {target_label} (strength {float(strength):g}{away})"
        return self._edit(model, audio_path, conditions, steps, seed, full_band, progress, run, what)
