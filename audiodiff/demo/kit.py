"""The Drums tab: a kit grid (one clip per label, each pad remade on its own), variations of an
uploaded hit, and class mixing, over `Pipeline.generate_kit`, `vary` and `mix`.

`DrumActions` is the part of `DemoActions` behind that tab (as `Editing` is of `Pipeline`):
`DemoActions` supplies the store, the limits, the upload checks, the condition widgets and the
result folders. Labels come from the tab's own controls (a pad's label, the hit's label, the two
labels to mix); every other condition (velocity, decay, ...) comes from the page's spec-built
widgets and applies to every clip. Clips are written as 24-bit WAV at the model's output rate,
each with a picture of its waveform over its spectrogram.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from audiodiff.audio import save_audio
from audiodiff.demo.form import NO_CHOICE_TEXT
from audiodiff.demo.store import MAX_GUIDANCE, NO_CHOICE, _check_at_most, _seconds, _step_reporter, _user_errors
from audiodiff.pipeline import GenerationRequest, Pipeline
from audiodiff.plots import waveform_spectrogram_image

__all__ = ["DrumActions", "Kit", "Pad"]

PAD_BITS = 24  # pads are written as 24-bit PCM: a drum's tail sits far below full scale
MIX_AT = 0.6  # the switch's default noise level: the first label's body, the second's surface


@dataclasses.dataclass(frozen=True)
class Pad:
    """One clip on the page: what it is, the seed that made it, its wav and its picture."""

    label: str
    seed: int
    wav: str
    png: str

    @property
    def title(self) -> str:
        return f"{self.label} (seed {self.seed})"


@dataclasses.dataclass(frozen=True)
class Kit:
    """The kit on the page (held in a `gr.State` between a kit and a pad's regeneration)."""

    model: str
    pads: tuple[Pad, ...]
    next_seed: int  # the first seed no pad of this kit has used: a regenerated pad takes it


class DrumActions:
    """The Drums tab's handlers, mixed into `DemoActions`. Each returns, per result slot, its
    column (shown when it holds a clip), audio and picture, then the wav files and a status."""

    # -- the tab's controls for a model

    def drums_form(self, model: str) -> dict[str, dict]:
        """Component settings of the tab for `model`, by key: a note, then (for a model with
        labels) the pads to make, the hit's label and the two labels to mix. A model without
        labels gets a note saying so, and the controls are hidden."""
        with _user_errors():
            pipe = self.store.get(model)
        labels = pipe.labels
        if not labels:
            note = (
                f"**{model}** has no labels, so there is no kit to make: the Drums tab needs a model trained "
                "with labels (such as the drums recipe's; digits and notes have labels too). Pick one above."
            )
            empty = dict(choices=[], value=None)
            return dict(
                drums_note=dict(value=note),
                drums_controls=dict(visible=False),
                pads=dict(choices=[], value=[]),
                hit_label=empty,
                mix_first=empty,
                mix_second=empty,
            )
        others = [name for name in pipe.conditions if name != "label"]
        shared = f"; {', '.join(others)} from the conditions above apply to every clip" if others else ""
        note = (
            f"**{model}**: one pad per label ({len(labels)}: {', '.join(labels)}), at {pipe.output_rate} Hz, "
            f"{pipe.space.channels} channel(s), {self._drum_seconds(pipe):g} s; the label widget above is not used here"
            f"{shared}."
        )
        return dict(
            drums_note=dict(value=note),
            drums_controls=dict(visible=True),
            pads=dict(choices=labels, value=labels[: self.limits.max_pads]),
            hit_label=dict(
                choices=[(NO_CHOICE_TEXT, NO_CHOICE)] + [(label, label) for label in labels], value=labels[0]
            ),
            mix_first=dict(choices=labels, value=labels[0]),
            mix_second=dict(choices=labels, value=labels[min(1, len(labels) - 1)]),
        )

    def drums_form_updates(self, model: str) -> list[Any]:
        """The tab's controls for a newly picked model, in `drums_form`'s order."""
        return [gr.update(**settings) for settings in self.drums_form(model).values()]

    # -- the kit

    def drum_kit(
        self,
        model: str,
        pads: list[str] | None,
        steps: float,
        guidance: float,
        seed: float,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """One clip per label in `pads`, in one batch, with seeds `seed`, `seed + 1`, ...;
        `conditions` are the condition widgets' values by name (velocity=, decay=, ...: the same
        for every pad; the label widget's is not used). Returns the pad grid, the kit (for
        `regenerate_pad`), the wav files and a status line."""
        labels = list(dict.fromkeys(pads or []))
        if not labels:
            raise gr.Error("pads: none chosen; pick the labels to make a pad for")
        _check_at_most("pads", len(labels), self.limits.max_pads)
        with _user_errors():
            progress(0, desc="loading the model")
            pipe = self._drum_model(model)
            request = self._drum_request(pipe, conditions, steps, guidance, seed, progress, f"{len(labels)} pads")
            started = time.perf_counter()
            clips = pipe.generate_kit(labels, request.seed, request=request, duration=self._drum_seconds(pipe))
            elapsed = time.perf_counter() - started
        folder = self._request_dir()
        made = tuple(
            self._write_pad(folder, label, request.seed + index, clip, pipe.output_rate)
            for index, (label, clip) in enumerate(clips.items())
        )
        kit = Kit(model, made, request.seed + len(made))
        status = (
            f"{len(made)} pads, {self._clip_text(clips[labels[0]], pipe.output_rate)}, "
            f"seeds {made[0].seed}..{made[-1].seed}, in {elapsed:.1f} s"
        )
        return self._kit_outputs(kit, status)

    def regenerate_pad(
        self,
        pad: float,
        model: str,
        steps: float,
        guidance: float,
        kit: Kit | None,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """Remake pad number `pad` (1 = the first) of `kit` with the next unused seed and the
        form's current conditions; the other pads are kept. Returns what `drum_kit` returns."""
        if kit is None:
            raise gr.Error("no kit yet: press Generate kit first, then regenerate a pad")
        if kit.model != model:
            raise gr.Error(
                f"the kit on the page was made with {kit.model} and the model is now {model}; "
                f"press Generate kit for {model}, or pick {kit.model} again"
            )
        index = int(pad or 0) - 1
        if not 0 <= index < len(kit.pads):
            raise gr.Error(f"pad={pad}: this kit has pads 1..{len(kit.pads)}; give one of those")
        label = kit.pads[index].label
        with _user_errors():
            progress(0, desc="loading the model")
            pipe = self._drum_model(model)
            request = self._drum_request(pipe, conditions, steps, guidance, kit.next_seed, progress, label)
            started = time.perf_counter()
            clip = pipe.generate_kit([label], request.seed, request=request, duration=self._drum_seconds(pipe))[label]
            elapsed = time.perf_counter() - started
        made = self._write_pad(self._request_dir(), label, request.seed, clip, pipe.output_rate)
        kit = dataclasses.replace(kit, pads=kit.pads[:index] + (made,) + kit.pads[index + 1 :], next_seed=made.seed + 1)
        status = f"pad {index + 1} ({label}) remade with seed {made.seed} in {elapsed:.1f} s; the other pads are kept"
        return self._kit_outputs(kit, status)

    def _kit_outputs(self, kit: Kit, status: str) -> list[Any]:
        grid = self._grid(list(kit.pads), self.limits.max_pads)
        return grid + [kit, [pad.wav for pad in kit.pads], status]

    # -- clips like pads: variations of an upload, class mixing

    def vary_hit(
        self,
        model: str,
        audio_path: str | None,
        hit_label: str,
        strength: float,
        count: float,
        steps: float,
        guidance: float,
        seed: float,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """`count` variations of an uploaded hit (seeds `seed`, `seed + 1`, ...): strength 0
        returns it, 1 ignores it. `hit_label` is what the hit is (NO_CHOICE: no label).
        Returns, per slot, its column, audio and picture, then the wav files and a status."""
        _check_at_most("variations", count, self.limits.max_batch)
        copies = max(1, int(count))
        with _user_errors():
            progress(0, desc="loading the model")
            pipe = self._drum_model(model)
            audio = self.read_upload(audio_path, pipe.sample_rate, pipe.space.channels)
            request = self._drum_request(pipe, conditions, steps, guidance, seed, progress, "variations")
            if hit_label:
                request = GenerationRequest.of(request, label=hit_label)
            started = time.perf_counter()
            out = pipe.vary(audio[None].repeat(copies, 1, 1), float(strength), pipe.sample_rate, request=request)
            elapsed = time.perf_counter() - started
        what = f"variation of {hit_label or 'the hit'} at strength {float(strength):g}"
        folder = self._request_dir()
        made = [self._write_pad(folder, what, seed, clip, out.sample_rate) for seed, clip in zip(out.seeds, out.audio)]
        status = (
            f"{len(made)} variation(s) of a {_seconds(audio.shape[-1] / pipe.sample_rate)} upload, "
            f"{self._clip_text(out.audio[0], out.sample_rate)}, in {elapsed:.1f} s"
        )
        return self._grid(made, self.limits.max_batch) + [[pad.wav for pad in made], status]

    def mix_labels(
        self,
        model: str,
        first: str,
        second: str,
        at: float,
        count: float,
        steps: float,
        guidance: float,
        seed: float,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """`count` clips that start as label `first` and switch to label `second` once the noise
        level falls to `at` (`Pipeline.mix`): `first`'s body, `second`'s surface. Returns what
        `vary_hit` returns."""
        _check_at_most("clips", count, self.limits.max_batch)
        for name, label in (("first", first), ("second", second)):
            if not label:
                raise gr.Error(f"{name}: no label picked; pick the label to mix {name}")
        clip_count = max(1, int(count))
        with _user_errors():
            progress(0, desc="loading the model")
            pipe = self._drum_model(model)
            request = self._drum_request(pipe, conditions, steps, guidance, seed, progress, "mixing")
            started = time.perf_counter()
            out = pipe.mix(
                {"label": first},
                {"label": second},
                at=float(at),
                n=clip_count,
                duration=self._drum_seconds(pipe),
                request=request,
            )
            elapsed = time.perf_counter() - started
        what = f"{first} to {second} at {float(at):g}"
        folder = self._request_dir()
        made = [self._write_pad(folder, what, seed, clip, out.sample_rate) for seed, clip in zip(out.seeds, out.audio)]
        status = f"{len(made)} clip(s) of {what}, {self._clip_text(out.audio[0], out.sample_rate)}, in {elapsed:.1f} s"
        return self._grid(made, self.limits.max_batch) + [[pad.wav for pad in made], status]

    # -- shared

    def _drum_model(self, model: str) -> Pipeline:
        pipe = self.store.get(model)
        if not pipe.labels:
            raise gr.Error(
                f"{model} has no labels, so the Drums tab cannot use it; pick a model trained with labels (e.g. drums)"
            )
        return pipe

    def _drum_seconds(self, pipe: Pipeline) -> float:
        """A kit's clips last the model's training length, within the page's limit."""
        return min(pipe.default_duration(), self.limits.max_seconds)

    def _drum_request(
        self, pipe: Pipeline, conditions: dict, steps, guidance, seed, progress, what: str
    ) -> GenerationRequest:
        """The request for the tab's clips: the form's conditions but its label (the tab says
        which label each clip is), the tab's steps, guidance and seed."""
        _check_at_most("guidance", guidance, MAX_GUIDANCE)
        asked, negatives = self._conditions(pipe, conditions)
        asked.pop("label", None)
        callback = _step_reporter(progress, f"sampling {what}")
        return self._request(asked, steps, seed, callback, negatives=negatives, guidance=float(guidance))

    def _write_pad(self, folder: Path, label: str, seed: int, clip: torch.Tensor, sample_rate: int) -> Pad:
        """One clip `[channels, samples]` as a 24-bit wav named for its label and seed, and its picture."""
        stem = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', label).strip('_') or 'clip'}_seed{seed}"
        wav = save_audio(folder / f"{stem}.wav", clip, sample_rate, bits=PAD_BITS)
        with self._plot_lock:
            png = waveform_spectrogram_image(clip, sample_rate, folder / f"{stem}.png", f"{label}, seed {seed}")
        return Pad(label, seed, str(wav), str(png))

    @staticmethod
    def _grid(pads: list[Pad], slots: int) -> list[Any]:
        """The slots' columns, then their audios, then their pictures; slots past `pads` hidden."""
        shown = [slot < len(pads) for slot in range(slots)]
        columns = [gr.update(visible=visible) for visible in shown]
        audios = [
            gr.update(value=pads[slot].wav, label=pads[slot].title) if visible else gr.update(value=None)
            for slot, visible in enumerate(shown)
        ]
        pictures = [gr.update(value=pads[slot].png if visible else None) for slot, visible in enumerate(shown)]
        return columns + audios + pictures

    @staticmethod
    def _clip_text(clip: torch.Tensor, sample_rate: int) -> str:
        """What a written clip `[channels, samples]` is, for the status line."""
        return (
            f"{_seconds(clip.shape[-1] / sample_rate)} at {sample_rate} Hz, {clip.shape[0]} channel(s), {PAD_BITS}-bit"
        )
