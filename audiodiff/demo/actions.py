"""What the page's buttons do: every handler of the demo, over `Pipeline`, apart from the layout."""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from audiodiff.audio import AudioError, load_audio, save_audio
from audiodiff.demo.about import about_text, model_note
from audiodiff.demo.edit_actions import EditActions
from audiodiff.demo.form import Field, condition_fields, field_settings, read_conditions
from audiodiff.demo.kit import DrumActions
from audiodiff.demo.store import (
    GRIFFIN_LIM_ITERS,
    MAX_GUIDANCE,
    MAX_SEED,
    NO_CHOICE,
    NO_CURVE,
    OUTPUT_MAX_AGE_S,
    Limits,
    ModelStore,
    _check_at_most,
    _seconds,
    _step_reporter,
    _user_errors,
)
from audiodiff.models.conditioning import ConditionError, tokenize
from audiodiff.pipeline import GenerateOutput, GenerationRequest, Pipeline, upsample_output
from audiodiff.plots import plot_curves, spectrogram_image
from audiodiff.vocoder import GriffinLimVocoder


class DemoActions(EditActions, DrumActions):
    """The page's event handlers. Each takes plain values (what the components hold) and
    returns plain values or component updates, so it can be called without a browser. The
    Edit tab's handlers are in `audiodiff.demo.edit_actions`, the Drums tab's in `audiodiff.demo.kit`."""

    def __init__(self, store: ModelStore, limits: Limits, workdir: str | os.PathLike | None = None):
        self.store = store
        self.limits = limits
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="audiodiff-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._plot_lock = threading.Lock()  # pyplot is not thread-safe

    # -- files

    def _request_dir(self) -> Path:
        """A fresh folder for one request's files; folders older than an hour are removed."""
        now = time.time()
        for old in self.workdir.iterdir():
            if old.is_dir() and now - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.workdir))

    def _write(self, folder: Path, stem: str, clip: torch.Tensor, sample_rate: int, title: str) -> tuple[str, str]:
        """One clip `[channels, samples]` as a wav and its spectrogram PNG."""
        wav = save_audio(folder / f"{stem}.wav", clip, sample_rate)
        with self._plot_lock:
            png = spectrogram_image(clip, sample_rate, folder / f"{stem}.png", title)
        return str(wav), str(png)

    def read_upload(self, path: str | None, sample_rate: int, channels: int) -> torch.Tensor:
        """An uploaded or recorded file as `[channels, samples]` at `sample_rate`, within the
        upload limits; anything else is a `gr.Error` naming the file and the limit."""
        if not path:
            raise gr.Error("no audio: upload a file or record one first")
        name = Path(path).name
        size = os.path.getsize(path)
        if size == 0:
            raise gr.Error(f"{name}: the file is empty (0 bytes); upload a WAV, FLAC, OGG or MP3 file")
        if size > self.limits.max_upload_bytes:
            raise gr.Error(
                f"{name}: {size / 1e6:.1f} MB, over this page's upload limit of {self.limits.max_upload_bytes / 1e6:g} MB"
            )
        try:
            audio, _ = load_audio(path, sample_rate, channels, max_seconds=self.limits.max_upload_seconds)
        except AudioError as error:
            message = (
                str(error)
                .replace(str(path), name)
                .replace("or raise the limit", f"to at most {self.limits.max_upload_seconds:g} s")
            )
            raise gr.Error(
                f"{message} (upload a WAV, FLAC, OGG or MP3 file up to {self.limits.max_upload_seconds:g} s)"
            ) from None
        return audio

    # -- the form

    @functools.cached_property
    def fields(self) -> dict[str, Field]:
        """The page's condition widgets by key, from the specs of every model it serves (each
        is loaded once, to read them). A condition may not share a name with a handler's input
        or with the form's other settings."""
        specs = {name: self.store.specs(name) for name in self.store.names}
        taken = {"model_note", "about", "config"} | {
            parameter.name
            for handler in (self.generate, self.vary, self.inpaint, self.continue_, self.edit_by_inversion)
            + (self.curves, self.form_updates)
            + (self.drum_kit, self.regenerate_pad, self.vary_hit, self.mix_labels)
            for parameter in inspect.signature(handler).parameters.values()
            if parameter.kind is not inspect.Parameter.VAR_KEYWORD
        }
        for name, model_specs in specs.items():
            clash = sorted({spec.name for spec in model_specs} & taken)
            if clash:
                raise ConditionError(
                    f"{name}: its condition(s) {clash} share a name with an input of the page ({sorted(taken)}); "
                    "rename them in the model's conditioning to serve it here"
                )
        return condition_fields(specs)

    def form(self, name: str, kept: dict[str, Any] | None = None) -> dict[str, dict]:
        """Component settings for model `name`, by key: its condition widgets (the others
        hidden), its sampler defaults, its note and About text. A value in `kept` (a widget's
        value before) stays where this model's widget can hold it."""
        with _user_errors():
            pipe = self.store.get(name)
        kept = kept or {}
        specs = {spec.name: spec for spec in pipe.condition_specs()}
        settings = {
            key: field_settings(field, specs.get(field.name), kept.get(key)) for key, field in self.fields.items()
        }
        sampling = pipe.config.sampling
        return settings | dict(
            duration=dict(value=min(pipe.default_duration(), self.limits.max_seconds)),
            sampler=dict(value=sampling.sampler),
            steps=dict(value=min(sampling.steps, self.limits.max_steps)),
            guidance=dict(value=min(sampling.guidance, MAX_GUIDANCE)),
            model_note=dict(value=model_note(name, pipe)),
            about=dict(value=self.about(name)),
            config=dict(value=self.store.config(name)),
        )

    def example_rows(self) -> list[list]:
        """Clickable examples: a few labels of each model (spread over its label list), and a
        text prompt where the label word is in the model's vocabulary."""
        rows = []
        for name in self.store.names:
            conditioning = self.store.config(name).get("conditioning") or {}
            labels = conditioning.get("labels") if isinstance(conditioning.get("labels"), list) else []
            vocab = set((conditioning.get("text") or {}).get("vocab") or [])
            picks = labels[:: max(1, len(labels) // 3)][:3]
            rows += [[name, label, "", seed] for seed, label in enumerate(picks)]
            if picks and vocab and all(word in vocab for word in tokenize(picks[-1])):
                rows.append([name, NO_CHOICE, picks[-1], 7])
            if not labels:
                rows.append([name, NO_CHOICE, "", 0])
        return rows

    def example(self, index: int, rows: list[list]) -> list[Any]:
        """Clicking example `index`: the model, its seed and the whole form for it."""
        name, label, prompt, seed = rows[int(index)]
        form = self.form(name, {"label": label, "text": prompt})
        return [gr.update(value=name), gr.update(value=seed)] + [gr.update(**s) for s in form.values()]

    def form_updates(self, model: str, **conditions) -> list[Any]:
        """The form for a newly picked model, in `form`'s order, keeping the values it can."""
        return [gr.update(**settings) for settings in self.form(model, conditions).values()]

    # -- conditions shared by generation and editing

    def _conditions(self, pipe: Pipeline, values: dict[str, Any]) -> tuple[dict, dict]:
        """(conditions, negatives) for the Pipeline from the condition widgets' values, by key."""
        return read_conditions(self.fields, pipe.condition_specs(), values, self.limits.max_text_chars)

    def _request(self, conditions: dict, steps: float, seed: float, callback, **options) -> GenerationRequest:
        """The form's sampling options as the one request every Pipeline method takes."""
        _check_at_most("steps", steps, self.limits.max_steps)
        if not 0 <= int(seed) <= MAX_SEED:
            raise gr.Error(f"seed={seed}: must be between 0 and {MAX_SEED}")
        if options.get("guidance") == 1.0:  # the slider's "1 = none": no condition guided, not even a model's `guide`
            options["guide"] = ()
        return GenerationRequest(
            conditions=conditions, steps=max(1, int(steps)), seed=int(seed), callback=callback, **options
        )

    # -- generate

    def generate(
        self,
        model: str,
        duration: float,
        sampler: str,
        steps: float,
        guidance: float,
        seed: float,
        batch_size: float,
        full_band: bool = False,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """Sample `batch_size` clips, with `full_band` through the upsampler (44.1 kHz).
        `conditions` are the condition widgets' values by name (`label=`, `text=`, `pitch=`,
        `negative_label=`, ...: see `fields`). Returns per slot an audio and a spectrogram (hidden
        when unused), then the wav files and a status line."""
        _check_at_most("batch size", batch_size, self.limits.max_batch)
        _check_at_most("duration", duration, self.limits.max_seconds, " s")
        _check_at_most("guidance", guidance, MAX_GUIDANCE)
        count = max(1, int(batch_size))
        with _user_errors():
            progress(0, desc="loading the model")
            pipe = self.store.get(model)
            upsampler = self._full_band(model, pipe, full_band)
            asked, negatives = self._conditions(pipe, conditions)
            request = self._request(
                asked,
                steps,
                seed,
                _step_reporter(progress, "sampling"),
                negatives=negatives,
                sampler=sampler,
                guidance=float(guidance),
            )
            started = time.perf_counter()
            out = self._upsample(pipe.generate(n=count, duration=float(duration), request=request), upsampler)
            elapsed = time.perf_counter() - started
        return self._results(out, elapsed)

    def _full_band(self, model: str, pipe: Pipeline, full_band: bool):
        """The store's upsampler when `full_band` is ticked (checked against the model's rate
        before anything is sampled), else None."""
        if not full_band:
            return None
        upsampler = self.store.upsampler()
        if upsampler.input_rate != pipe.sample_rate:
            raise gr.Error(
                f"full band: the upsampler extends {upsampler.input_rate} Hz audio and {model} makes "
                f"{pipe.sample_rate} Hz; untick full band or pick a {upsampler.input_rate} Hz model"
            )
        return upsampler

    @staticmethod
    def _upsample(out: GenerateOutput, upsampler) -> GenerateOutput:
        """`out` through `upsampler` (None: unchanged), with the Pipeline's clipping guard. Done
        here, on the result, so the store's shared Pipeline is never changed by a request."""
        return upsample_output(out, upsampler)

    def _results(self, out: GenerateOutput, elapsed: float) -> list[Any]:
        folder = self._request_dir()
        files = [
            self._write(folder, f"sample_seed{seed}", clip, out.sample_rate, f"seed {seed}")
            for seed, clip in zip(out.seeds, out.audio)
        ]
        slots = self.limits.max_batch
        audios = [
            gr.update(value=files[i][0], visible=True) if i < len(files) else gr.update(value=None, visible=False)
            for i in range(slots)
        ]
        images = [
            gr.update(value=files[i][1], visible=True) if i < len(files) else gr.update(value=None, visible=False)
            for i in range(slots)
        ]
        seconds = out.audio.shape[-1] / out.sample_rate
        status = (
            f"{len(files)} clip(s) of {_seconds(seconds)} at {out.sample_rate} Hz, seeds {out.seeds[0]}..{out.seeds[-1]}, "
            f"in {elapsed:.1f} s ({seconds * len(files) / max(elapsed, 1e-9):.2f}x real time)"
        )
        return audios + images + [[wav for wav, _ in files], status]

    # -- control curves

    def curves(
        self,
        model: str,
        audio_path: str | None,
        transpose: float,
        f0_shape: str,
        f0_pitch: float,
        loudness_shape: str,
        loudness_level: float,
        steps: float,
        guidance: float,
        seed: float,
        progress: gr.Progress = gr.Progress(),
        **conditions,
    ) -> list[Any]:
        """Generate along control curves: taken from a recording (`audio_path`, its F0 moved by
        `transpose` semitones) or, without one, the named shapes around MIDI `f0_pitch` and
        `loudness_level` dBFS (a shape of NO_CURVE leaves that curve out); `conditions` as for
        `generate`. A given F0 replaces the pitch number.
        Returns the clip, a picture of the asked curves over its spectrogram and measured F0, a status."""
        from audiodiff import controls

        _check_at_most("guidance", guidance, MAX_GUIDANCE)
        with _user_errors():
            progress(0, desc="loading the model")
            pipe = self.store.get(model)
            if not pipe.curves:
                raise gr.Error(f"{model} takes no control curves; pick a model trained with them (e.g. notes)")
            frame_rate = pipe.curve_frame_rate
            if audio_path:
                source = self.read_upload(audio_path, pipe.sample_rate, 1)
                duration = min(source.shape[-1] / pipe.sample_rate, pipe.default_duration())
                source = source[..., : int(duration * pipe.sample_rate)]
                progress(0, desc="measuring the recording's curves")
                asked = pipe.curves_from(source, pipe.sample_rate, transpose=float(transpose))
                what = f"the recording's curves{f', moved {float(transpose):+g} semitones' if float(transpose) else ''}"
            else:
                duration = pipe.default_duration()
                frames = max(1, round(duration * frame_rate))
                asked = {}
                if f0_shape != NO_CURVE and "f0" in pipe.curves:
                    asked["f0"] = controls.shape("f0", f0_shape, frames, pitch=float(f0_pitch), frame_rate=frame_rate)
                if loudness_shape != NO_CURVE and "loudness" in pipe.curves:
                    asked["loudness"] = controls.shape(
                        "loudness", loudness_shape, frames, level=float(loudness_level), frame_rate=frame_rate
                    )
                if not asked:
                    raise gr.Error("no curve asked: upload or record audio, or pick an f0 or a loudness shape")
                what = ", ".join(
                    f"{name} {kind}" for name, kind in (("f0", f0_shape), ("loudness", loudness_shape)) if name in asked
                )
            given, negatives = self._conditions(pipe, conditions)
            if "f0" in asked:
                given.pop("pitch", None)  # the curve says the pitch
            request = self._request(
                given | asked,
                steps,
                seed,
                _step_reporter(progress, "sampling"),
                negatives=negatives,
                guidance=float(guidance),
            )
            started = time.perf_counter()
            out = pipe.generate(n=1, duration=duration, request=request)
            elapsed = time.perf_counter() - started
        clip = out.audio[0]
        measured = controls.extract(clip, out.sample_rate, frame_rate)
        folder = self._request_dir()
        wav = save_audio(folder / "curves.wav", clip, out.sample_rate)
        with self._plot_lock:
            png = plot_curves(
                [{"audio": clip, "asked": asked, "measured": measured, "title": what}],
                out.sample_rate,
                folder / "curves.png",
            )
        status = f"{what}: {_seconds(clip.shape[-1] / out.sample_rate)} in {elapsed:.1f} s; " + self._following(
            asked, measured
        )
        return [str(wav), str(png), status]

    @staticmethod
    def _following(asked: dict, measured: dict) -> str:
        """How closely the output follows the asked F0, in words a person can check by ear."""
        from audiodiff.controls import f0_agreement

        if "f0" not in asked:
            return "no F0 asked"
        agreement = f0_agreement(asked["f0"], measured["f0"])
        if not agreement["voiced"]:
            return "the asked F0 is unvoiced throughout"
        return f"{agreement['within'] / agreement['voiced']:.0%} of the asked voiced frames are within 50 cents of the asked F0 (pYIN)"

    # -- vocoder

    def vocode(self, model: str, audio_path: str | None, progress: gr.Progress = gr.Progress()) -> list[Any]:
        """The mel round trip of an upload through the model's vocoder and through Griffin-Lim:
        three audios and spectrograms (input, model's vocoder, Griffin-Lim), then timings."""
        with _user_errors():
            pipe = self.store.get(model)
            if pipe.vocoder is None:
                raise gr.Error(f"{model} is a waveform model: it has no vocoder; pick a mel spectrogram model")
            audio = self.read_upload(audio_path, pipe.sample_rate, 1)
            mel_spec = pipe.mel_spec
            frames = mel_spec.num_frames(audio.shape[-1])
            if frames < 1:
                raise gr.Error(
                    f"the upload is {audio.shape[-1]} samples long; the vocoder needs at least {mel_spec.n_fft}"
                )
            audio = audio[..., : mel_spec.num_samples(frames)]
            baseline = GriffinLimVocoder(mel_spec, GRIFFIN_LIM_ITERS)
            rows, clips = [], [("input", audio)]
            for title, vocoder in (
                (self._vocoder_name(pipe), pipe.vocoder),
                (f"Griffin-Lim, {GRIFFIN_LIM_ITERS} iterations", baseline),
            ):
                progress(len(rows) / 2, desc=title)
                started = time.perf_counter()
                output = vocoder.round_trip(audio)[0].float().cpu()
                elapsed = time.perf_counter() - started
                clips.append((title, output))
                rows.append((title, elapsed, audio.shape[-1] / pipe.sample_rate / max(elapsed, 1e-9)))
        folder = self._request_dir()
        written = [
            self._write(folder, f"clip{i}", clip, pipe.sample_rate, title) for i, (title, clip) in enumerate(clips)
        ]
        table = "| vocoder | wall time | speed |\n|---|---|---|\n" + "\n".join(
            f"| {title} | {elapsed * 1000:.0f} ms | {speed:.1f}x real time |" for title, elapsed, speed in rows
        )
        note = f"{_seconds(audio.shape[-1] / pipe.sample_rate)} at {pipe.sample_rate} Hz, {frames} mel frames\n\n"
        return [path for pair in written for path in pair] + [note + table]

    @staticmethod
    def _vocoder_name(pipe: Pipeline) -> str:
        vocoder = pipe.vocoder
        if isinstance(vocoder, GriffinLimVocoder):
            return f"the model's vocoder: Griffin-Lim, {vocoder.num_iters} iterations (no trained vocoder)"
        return f"the model's vocoder: {type(vocoder).__name__} ({vocoder.kind})"

    # -- about

    def about(self, name: str) -> str:
        """The model in a page of Markdown: what it takes, its shape, how it was trained."""
        return about_text(name, self.store.get(name), self.store.sources[name])
