"""What the page's buttons do: every handler of the demo, over `Pipeline`, apart from the layout."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from audiodiff.audio import AudioError, load_audio, save_audio
from audiodiff.demo.store import (
    GRIFFIN_LIM_ITERS,
    MAX_GUIDANCE,
    MAX_SEED,
    NO_CURVE,
    NO_LABEL,
    NUMBER_SLOTS,
    OUTPUT_MAX_AGE_S,
    Limits,
    ModelStore,
    _check_at_most,
    _number_specs,
    _seconds,
    _step_reporter,
    _user_errors,
)
from audiodiff.models.conditioning import tokenize
from audiodiff.pipeline import GenerateOutput, GenerationRequest, Pipeline
from audiodiff.plots import plot_curves, spectrogram_image
from audiodiff.vocoder import GriffinLimVocoder


class DemoActions:
    """The page's event handlers. Each takes plain values (what the components hold) and
    returns plain values or component updates, so it can be called without a browser."""

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

    def form(self, name: str, label: str | None = None, prompt: str | None = None) -> list[dict]:
        """Component settings for model `name`: conditions it takes (label choices, text box,
        number sliders with their trained ranges), its sampler defaults, and its About text.
        The order is `FORM_FIELDS`; `label` and `prompt` are kept when the model takes them."""
        with _user_errors():
            pipe = self.store.get(name)
        labels = pipe.labels
        choices = [("(none: unconditional)", NO_LABEL)] + [(item, item) for item in labels]
        has_text = "text" in pipe.conditions
        sampling = pipe.config.sampling
        settings = [
            dict(
                choices=choices,
                value=label if label in labels else (labels[0] if labels else NO_LABEL),
                visible=bool(labels),
            ),
            dict(choices=choices, value=NO_LABEL, visible=bool(labels)),
            dict(value=(prompt or "") if has_text else "", visible=has_text),
            dict(value="", visible=has_text),
        ]
        specs = _number_specs(pipe)
        for slot in range(NUMBER_SLOTS):
            if slot < len(specs):
                number, low, high = specs[slot]
                settings.append(
                    dict(
                        label=f"{number} (trained {low:g}..{high:g})",
                        minimum=low,
                        maximum=high,
                        value=round((low + high) / 2, 2),
                        visible=True,
                    )
                )
            else:
                settings.append(dict(label=f"number {slot + 1}", minimum=0, maximum=1, value=0, visible=False))
        settings += [
            dict(value=min(pipe.default_duration(), self.limits.max_seconds)),
            dict(value=sampling.sampler),
            dict(value=min(sampling.steps, self.limits.max_steps)),
            dict(value=min(sampling.guidance, MAX_GUIDANCE)),
            dict(value=self.model_note(name, pipe)),
            dict(value=self.about(name)),
            dict(value=self.store.config(name)),
        ]
        return settings

    def model_note(self, name: str, pipe: Pipeline) -> str:
        kind = pipe.space.title
        extra = len(_number_specs(pipe)) - NUMBER_SLOTS
        more = f"; {extra} more number(s) take their midpoint" if extra > 0 else ""
        conditions = ", ".join(pipe.conditions) or "none (unconditional)"
        student = pipe.config.student
        guidance = "guidance an input" if student and student.guidance_range else "guidance fixed at distillation"
        fast = (
            f"; a few-step student of {student.base} ({student.method} distillation, {student.steps} step(s), {guidance})"
            if student
            else ""
        )
        return (
            f"**{name}**: {kind} model, {pipe.sample_rate} Hz, {pipe.default_duration():g} s clips; "
            f"conditions: {conditions}{more}{fast}"
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
                rows.append([name, NO_LABEL, picks[-1], 7])
            if not labels:
                rows.append([name, NO_LABEL, "", 0])
        return rows

    def example(self, index: int, rows: list[list]) -> list[Any]:
        """Clicking example `index`: the model, its seed and the whole form for it."""
        name, label, prompt, seed = rows[int(index)]
        return [gr.update(value=name), gr.update(value=seed)] + [gr.update(**s) for s in self.form(name, label, prompt)]

    def form_updates(self, name: str, label: str | None, prompt: str | None) -> list[Any]:
        return [gr.update(**settings) for settings in self.form(name, label, prompt)]

    # -- conditions shared by generation and editing

    def _conditions(self, pipe: Pipeline, label: str | None, prompt: str | None, numbers: Sequence[float]) -> dict:
        """Keyword arguments for the Pipeline: the conditions this model takes, from the form."""
        kwargs: dict = {}
        if label and "label" in pipe.conditions:
            kwargs["label"] = label
        elif label:
            raise gr.Error(f"this model takes no label, got {label!r}; clear the label")
        if prompt and prompt.strip():
            _check_at_most("prompt length", len(prompt), self.limits.max_text_chars, " characters")
            if "text" not in pipe.conditions:
                raise gr.Error("this model takes no text prompt; clear the prompt or pick a text-conditioned model")
            kwargs["text"] = prompt.strip()
        for slot, (name, low, high) in enumerate(_number_specs(pipe)):
            value = numbers[slot] if slot < min(NUMBER_SLOTS, len(numbers)) else (low + high) / 2
            if not low - 1e-6 <= float(value) <= high + 1e-6:
                raise gr.Error(f"{name}={value:g}: outside the range this model was trained on ({low:g}..{high:g})")
            kwargs[name] = float(value)
        return kwargs

    def _negatives(self, pipe: Pipeline, negative_label: str | None, negative_prompt: str | None) -> dict:
        kwargs: dict = {}
        if negative_label and "label" in pipe.conditions:
            kwargs["label"] = negative_label
        if negative_prompt and negative_prompt.strip():
            _check_at_most("negative prompt length", len(negative_prompt), self.limits.max_text_chars, " characters")
            if "text" in pipe.conditions:
                kwargs["text"] = negative_prompt.strip()
        return kwargs

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
        label: str | None,
        prompt: str | None,
        negative_label: str | None,
        negative_prompt: str | None,
        number_1: float,
        number_2: float,
        number_3: float,
        number_4: float,
        duration: float,
        sampler: str,
        steps: float,
        guidance: float,
        seed: float,
        batch_size: float,
        progress: gr.Progress = gr.Progress(),
    ) -> list[Any]:
        """Sample `batch_size` clips. number_1..number_4 are the model's number conditions in
        its order (e.g. notes: pitch, velocity; see its About tab); a model takes no others.
        Returns per slot an audio and a spectrogram (hidden when unused), then the wav files for
        download and a status line."""
        _check_at_most("batch size", batch_size, self.limits.max_batch)
        _check_at_most("duration", duration, self.limits.max_seconds, " s")
        _check_at_most("guidance", guidance, MAX_GUIDANCE)
        count = max(1, int(batch_size))
        with _user_errors():
            progress(0, desc="loading the model")
            pipe = self.store.get(model)
            request = self._request(
                self._conditions(pipe, label, prompt, [number_1, number_2, number_3, number_4]),
                steps,
                seed,
                _step_reporter(progress, "sampling"),
                negatives=self._negatives(pipe, negative_label, negative_prompt),
                sampler=sampler,
                guidance=float(guidance),
            )
            started = time.perf_counter()
            out = pipe.generate(n=count, duration=float(duration), request=request)
            elapsed = time.perf_counter() - started
        return self._results(out, elapsed)

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

    # -- edit

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

    def _edit(self, name, path, label, prompt, numbers, steps, seed, progress, run: Callable, what: str) -> list[Any]:
        with _user_errors():
            progress(0, desc="loading the model")
            pipe = self.store.get(name)
            audio = self._edit_input(pipe, path)
            request = self._request(
                self._conditions(pipe, label, prompt, numbers), steps, seed, _step_reporter(progress, what)
            )
            started = time.perf_counter()
            out = run(pipe, audio, request)
            return self._edit_result(pipe, audio, out, what, time.perf_counter() - started)

    def vary(
        self,
        model: str,
        audio_path: str | None,
        label: str | None,
        prompt: str | None,
        number_1: float,
        number_2: float,
        number_3: float,
        number_4: float,
        strength: float,
        steps: float,
        seed: float,
        method: str = "noise",
        progress: gr.Progress = gr.Progress(),
    ) -> list[Any]:
        """Audio-to-audio variation; strength 0 returns the input, 1 ignores it. `method`:
        "noise" (noise the input, then sample back) or "inversion" (DDIM inversion: keeps timing)."""
        if method not in ("noise", "inversion"):
            raise gr.Error(f"method {method!r}: choose noise or inversion")

        def run(pipe, audio, request):
            return pipe.vary(audio, float(strength), pipe.sample_rate, request=request, mode=method)

        return self._edit(
            model,
            audio_path,
            label,
            prompt,
            [number_1, number_2, number_3, number_4],
            steps,
            seed,
            progress,
            run,
            f"variation (strength {float(strength):g}, by {method})",
        )

    def inpaint(
        self,
        model: str,
        audio_path: str | None,
        label: str | None,
        prompt: str | None,
        number_1: float,
        number_2: float,
        number_3: float,
        number_4: float,
        start: float,
        end: float,
        region: str,
        steps: float,
        seed: float,
        progress: gr.Progress = gr.Progress(),
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

        what = "inpainting" if region == "inside" else "outpainting"
        return self._edit(
            model,
            audio_path,
            label,
            prompt,
            [number_1, number_2, number_3, number_4],
            steps,
            seed,
            progress,
            run,
            f"{what} {float(start):g}..{float(end):g} s",
        )

    def continue_(
        self,
        model: str,
        audio_path: str | None,
        label: str | None,
        prompt: str | None,
        number_1: float,
        number_2: float,
        number_3: float,
        number_4: float,
        seconds: float,
        steps: float,
        seed: float,
        progress: gr.Progress = gr.Progress(),
    ) -> list[Any]:
        """Continue the audio by `seconds`."""
        _check_at_most("continuation", seconds, self.limits.max_seconds, " s")

        def run(pipe, audio, request):
            return pipe.continue_(audio, seconds=float(seconds), sample_rate=pipe.sample_rate, request=request)

        return self._edit(
            model,
            audio_path,
            label,
            prompt,
            [number_1, number_2, number_3, number_4],
            steps,
            seed,
            progress,
            run,
            f"continuation by {float(seconds):g} s",
        )

    # -- control curves

    def curves(
        self,
        model: str,
        audio_path: str | None,
        transpose: float,
        f0_shape: str,
        pitch: float,
        loudness_shape: str,
        level: float,
        label: str | None,
        prompt: str | None,
        number_1: float,
        number_2: float,
        number_3: float,
        number_4: float,
        steps: float,
        guidance: float,
        seed: float,
        progress: gr.Progress = gr.Progress(),
    ) -> list[Any]:
        """Generate along control curves: taken from a recording (`audio_path`, its F0 moved by
        `transpose` semitones) or, without one, the named shapes around MIDI `pitch` and `level`
        dBFS (a shape of NO_CURVE leaves that curve out). A given F0 replaces the pitch number.
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
                    asked["f0"] = controls.shape("f0", f0_shape, frames, pitch=float(pitch), frame_rate=frame_rate)
                if loudness_shape != NO_CURVE and "loudness" in pipe.curves:
                    asked["loudness"] = controls.shape(
                        "loudness", loudness_shape, frames, level=float(level), frame_rate=frame_rate
                    )
                if not asked:
                    raise gr.Error("no curve asked: upload or record audio, or pick an f0 or a loudness shape")
                what = ", ".join(
                    f"{name} {kind}" for name, kind in (("f0", f0_shape), ("loudness", loudness_shape)) if name in asked
                )
            conditions = self._conditions(pipe, label, prompt, [number_1, number_2, number_3, number_4])
            if "f0" in asked:
                conditions.pop("pitch", None)  # the curve says the pitch
            request = self._request(
                {**conditions, **asked}, steps, seed, _step_reporter(progress, "sampling"), guidance=float(guidance)
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
        pipe = self.store.get(name)
        config, info = pipe.config, pipe.info
        parameters = sum(p.numel() for p in pipe.model.parameters())
        unet = config.model
        lines = [f"### {name}", f"`{info.get('path', self.store.sources[name])}`", ""]
        lines.append(
            f"- **representation**: {pipe.space.title}, {pipe.sample_rate} Hz, "
            f"{config.data.channels} channel(s), {pipe.default_duration():g} s training clips"
        )
        lines.append(f"- **conditions**: {self._conditions_text(pipe)}")
        if pipe.mel_spec is not None:
            mel = pipe.mel_spec
            lines.append(
                f"- **MelSpec**: n_fft {mel.n_fft}, hop {mel.hop_length}, {mel.n_mels} mels, "
                f"{mel.f_min:g}..{mel.f_max if mel.f_max is not None else mel.sample_rate / 2:g} Hz"
            )
        lines.append(
            f"- **architecture**: U-Net dims={unet.dims}, channels {unet.channels} x {list(unet.channel_mults)}, "
            f"{unet.num_res_blocks} res block(s) per level, attention at levels {list(unet.attention_levels)}; "
            f"**{parameters / 1e6:.2f} M parameters**"
        )
        sampling = config.sampling
        guide = f" ({', '.join(sampling.guide)}; the rest at {sampling.rest_guidance:g})" if sampling.guide else ""
        low, high = sampling.guidance_interval
        interval = f" at noise levels {low:g}-{high:g}" if (low, high) != (0.0, 1.0) else ""
        lines.append(
            f"- **sampling defaults**: {sampling.sampler}, {sampling.steps} steps, guidance {sampling.guidance:g}"
            f"{guide}{interval}, vocoder {sampling.vocoder}"
        )
        lines += ["", "#### Training", self._training_text(info)]
        metrics = info.get("metrics")
        if metrics:
            lines += ["", "#### Metrics", self._metrics_text(metrics)]
        return "\n".join(lines)

    @staticmethod
    def _conditions_text(pipe: Pipeline) -> str:
        parts = []
        if pipe.labels:
            parts.append(f"label ({len(pipe.labels)}: {', '.join(pipe.labels)})")
        text = pipe.config.conditioning.text
        if text is not None:
            parts.append(
                f"text ({text.encoder} encoder, {len(text.vocab)} words)"
                if text.vocab
                else f"text ({text.encoder} encoder)"
            )
        parts += [f"{name} ({low:g}..{high:g})" for name, low, high in _number_specs(pipe)]
        return "; ".join(parts) or "none (unconditional)"

    @staticmethod
    def _training_text(info: dict) -> str:
        training = info.get("training")
        if not training:
            return "no training record in this checkpoint"
        text = (
            f"step {training.get('step')} of {training.get('steps')}, {training.get('wall_seconds')} s on "
            f"{training.get('device')} x{training.get('world_size')}, {training.get('precision')}, "
            f"torch {training.get('torch')}, {training.get('date')}"
        )
        dataset = info.get("dataset") or {}
        if dataset:
            skipped = sum((dataset.get("skipped") or {}).values()) if isinstance(dataset.get("skipped"), dict) else 0
            text += f"; data: {dataset.get('kept')} clips from `{dataset.get('source')}` ({dataset.get('layout')}), {skipped} skipped"
        return text

    @staticmethod
    def _metrics_text(metrics: Any) -> str:
        if isinstance(metrics, dict) and all(not isinstance(v, (dict, list)) for v in metrics.values()):
            return "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
        rows = metrics.get("scores") if isinstance(metrics, dict) else None
        if isinstance(rows, list) and all(isinstance(r, dict) and "title" in r for r in rows):
            return "| score | model | real-vs-real floor |\n|---|---|---|\n" + "\n".join(
                f"| {r['title']} | {r.get('model')} | {r.get('floor')} |" for r in rows
            )
        return "see `metrics` in the config below"
