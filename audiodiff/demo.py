"""The Gradio page: generate, edit, compare vocoders and read about a model, over `Pipeline`.

    from audiodiff.demo import launch
    launch(["runs/quickstart"])            # http://127.0.0.1:7860

`build_app` makes the `gr.Blocks` (queued, with a concurrency limit); `launch` serves it. Every
input is bounded by a `Limits`, and every user mistake (a bad upload, a label the model does not
know, a value over a limit) comes back as a `gr.Error` that says what was wrong and the limit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
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
from audiodiff.bundled import bundled_names, bundled_path
from audiodiff.checkpoint import CONFIG, CheckpointError, read_json, resolve_checkpoint
from audiodiff.diffusion.distill import GUIDANCE
from audiodiff.diffusion.samplers import SAMPLERS
from audiodiff.errors import UserError
from audiodiff.models.conditioning import tokenize
from audiodiff.pipeline import GenerateOutput, GenerationRequest, Pipeline
from audiodiff.plots import plot_curves, spectrogram_image
from audiodiff.vocoder import GriffinLimVocoder

__all__ = ["Limits", "ModelStore", "DemoActions", "build_app", "discover_models", "launch"]

DEFAULT_MODELS = ("digits-fast", "digits")  # the page opens with the first of these that is bundled
NO_LABEL = ""  # the label dropdown's "no label" choice (unconditional on the label)
NO_CURVE = "none"  # a curve shape choice: leave that curve out
NUMBER_SLOTS = 4  # number sliders on the page; a model's further numbers take their midpoint
GRIFFIN_LIM_ITERS = 32  # the baseline of the vocoder comparison
MAX_GUIDANCE = 10.0
MAX_SEED = 2**31 - 1
OUTPUT_MAX_AGE_S = 3600  # results written for the page are deleted after this long
NO_MODEL_HELP = """### No model to serve yet

Train one in about a minute and point the demo at it:

```
audiodiff data synth --out data/synth
audiodiff train --config recipes/quickstart/config.yaml
audiodiff demo --checkpoint runs/quickstart
```

or install a release that bundles models ("digits", "notes") and run `audiodiff demo`."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask for; the defaults keep a laptop CPU responsive."""

    max_steps: int = 50
    max_batch: int = 4
    max_seconds: float = 5.0  # generated duration and continuation length (long clips are made window by window)
    max_upload_seconds: float = 30.0
    max_upload_bytes: int = 20 * 1024 * 1024
    max_text_chars: int = 200
    concurrency: int = 1  # requests that run a model at the same time
    queue_size: int = 32  # requests waiting beyond that; more are refused

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(f"Limits.{field.name}={getattr(self, field.name)}: must be positive")


# --------------------------------------------------------------------------------------------
# models


def _display_name(folder: Path, given: Path) -> str:
    """A short picker name: the run folder, plus the step when a step_N folder was given."""
    if folder.parent.name == "checkpoints" and folder != given:
        return folder.parent.parent.name  # a run directory: its newest checkpoint
    if folder.parent.name == "checkpoints":
        return f"{folder.parent.parent.name}/{folder.name}"
    return folder.name


def discover_models(checkpoints: Sequence[str | os.PathLike] = ()) -> dict[str, str]:
    """Picker name -> bundled name or checkpoint directory: bundled models, then `checkpoints`
    (checkpoint or run directories, resolved now). A non-diffusion checkpoint is an error."""
    sources = {name: name for name in bundled_names()}
    for path in checkpoints:
        folder = resolve_checkpoint(path)
        kind = read_json(folder / CONFIG).get("kind")
        if kind != "diffusion":
            raise CheckpointError(f"{folder}: kind={kind!r}; the demo serves diffusion model checkpoints")
        name = base = _display_name(folder, Path(path).expanduser())
        count = 1
        while name in sources:
            count += 1
            name = f"{base} ({count})"
        sources[name] = str(folder)
    return sources


class ModelStore:
    """Loads each model once, on first use; safe to call from the server's worker threads."""

    def __init__(self, sources: dict[str, str], device: str = "cpu"):
        self.sources = dict(sources)
        self.device = device
        self.load_count = 0
        self._pipes: dict[str, Pipeline] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.sources)

    def default_name(self) -> str | None:
        found = [name for name in DEFAULT_MODELS if name in self.sources]
        return found[0] if found else (self.names[0] if self.sources else None)

    def _check(self, name: str) -> str:
        if name not in self.sources:
            raise ValueError(f"unknown model {name!r}; this page serves {self.names}")
        return name

    def config(self, name: str) -> dict:
        """The model's config.json, read without loading weights."""
        source = self.sources[self._check(name)]
        folder = bundled_path(source) or Path(source)
        return read_json(folder / CONFIG)

    def get(self, name: str) -> Pipeline:
        with self._lock:
            if self._check(name) not in self._pipes:
                self._pipes[name] = Pipeline.from_pretrained(self.sources[name], device=self.device)
                self.load_count += 1
            return self._pipes[name]


# --------------------------------------------------------------------------------------------
# small helpers


@contextlib.contextmanager
def _user_errors():
    """Turn the package's user errors (bad audio, unknown label, a span outside the clip) and
    other ValueErrors into `gr.Error`, so the page shows the message and keeps working."""
    try:
        yield
    except gr.Error:
        raise
    except (UserError, ValueError) as error:
        raise gr.Error(str(error)) from None


def _check_at_most(name: str, value: float, limit: float, unit: str = "") -> None:
    if value > limit:
        raise gr.Error(f"{name}={value:g}{unit} is over this page's limit of {limit:g}{unit}; lower it")


def _step_reporter(progress: gr.Progress, desc: str) -> Callable[[dict], None]:
    """A Pipeline `callback` that moves the page's progress bar; a new sampling pass (the next
    window of a long clip) restarts the count and is named in the description."""
    state = {"pass": 1, "last": -1}

    def report(info: dict) -> None:
        if info["step"] <= state["last"]:
            state["pass"] += 1
        state["last"] = info["step"]
        label = desc if state["pass"] == 1 else f"{desc}, window {state['pass']}"
        progress((info["step"] + 1, info["total"]), desc=label, unit="steps")

    return report


def _number_specs(pipe: Pipeline) -> list[tuple[str, float, float]]:
    """(name, low, high) of each number condition, with its trained range."""
    specs = []
    for name, span in pipe.config.conditioning.numbers.items():
        if name not in pipe.conditions:
            continue
        low, high = (
            (float(span[0]), float(span[1])) if isinstance(span, (list, tuple)) and len(span) == 2 else (0.0, 1.0)
        )
        specs.append((name, low, high))
    return specs


def _config_numbers(store: ModelStore, name: str) -> dict:
    """A model's number conditions from its config.json (without loading weights), in slot
    order; a student's guidance input is set by the guidance slider, not a number slot."""
    numbers = (store.config(name).get("conditioning") or {}).get("numbers") or {}
    return {key: span for key, span in numbers.items() if key != GUIDANCE} if isinstance(numbers, dict) else {}


def _slot_names(store: ModelStore) -> list[list[str]]:
    """For each number slot, the number conditions the store's models put in it, e.g.
    `[["pitch"], ["velocity"], [], []]`: what `number_1`, `number_2`, ... mean."""
    names: list[list[str]] = [[] for _ in range(NUMBER_SLOTS)]
    for name in store.names:
        for slot, number in enumerate(list(_config_numbers(store, name))[:NUMBER_SLOTS]):
            if number not in names[slot]:
                names[slot].append(number)
    return names


def _slot_ranges(store: ModelStore) -> list[tuple[float, float]]:
    """For each number slot, the lowest low and highest high over the store's models (from their
    config.json, without loading weights)."""
    ranges: list[tuple[float, float]] = []
    for name in store.names:
        for slot, span in enumerate(list(_config_numbers(store, name).values())[:NUMBER_SLOTS]):
            if not (isinstance(span, (list, tuple)) and len(span) == 2):
                continue
            low, high = float(span[0]), float(span[1])
            if slot < len(ranges):
                ranges[slot] = (min(ranges[slot][0], low), max(ranges[slot][1], high))
            else:
                ranges += [(0.0, 1.0)] * (slot - len(ranges)) + [(low, high)]
    return ranges


def _seconds(seconds: float) -> str:
    return f"{seconds:.2f} s"


# --------------------------------------------------------------------------------------------
# what the page does, without the layout


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
        progress: gr.Progress = gr.Progress(),
    ) -> list[Any]:
        """Audio-to-audio variation; strength 0 returns the input, 1 ignores it."""

        def run(pipe, audio, request):
            return pipe.vary(audio, strength=float(strength), sample_rate=pipe.sample_rate, request=request)

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
            f"variation (strength {float(strength):g})",
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


# --------------------------------------------------------------------------------------------
# the page

FORM_FIELDS = (
    ["label", "negative_label", "prompt", "negative_prompt"]
    + [f"number_{i + 1}" for i in range(NUMBER_SLOTS)]
    + ["duration", "sampler", "steps", "guidance", "model_note", "about", "config"]
)


def build_app(
    model_paths: Sequence[str | os.PathLike] = (),
    limits: Limits | None = None,
    device: str = "cpu",
    store: ModelStore | None = None,
) -> gr.Blocks:
    """The page for the bundled models and `model_paths` (checkpoint or run directories), with
    a queue that runs at most `limits.concurrency` model requests at once."""
    limits = limits or Limits()
    store = store or ModelStore(discover_models(model_paths), device)
    with gr.Blocks(
        title="audiodiff", analytics_enabled=False, delete_cache=(OUTPUT_MAX_AGE_S, OUTPUT_MAX_AGE_S)
    ) as app:
        gr.Markdown(
            "# audiodiff\nGenerate and edit audio with a diffusion model; compare vocoders; read about the model."
        )
        if store.default_name() is None:
            gr.Markdown(NO_MODEL_HELP, elem_id="no-model")
        else:
            _build_page(DemoActions(store, limits), store.default_name())
    app.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    app.audiodiff_store = store
    return app


def _build_page(actions: DemoActions, default: str) -> None:
    """Components and events of the page for a store with at least one model."""
    limits, store = actions.limits, actions.store
    initial = dict(zip(FORM_FIELDS, actions.form(default)))
    for slot, (low, high) in enumerate(_slot_ranges(store)):
        # the sliders' own bounds (which gradio enforces on every request, whatever model it names)
        # span every model's range in that slot; the handler checks the chosen model's range
        field = initial[f"number_{slot + 1}"]
        field.update(minimum=min(low, field["minimum"]), maximum=max(high, field["maximum"]))
    for slot, names in enumerate(_slot_names(store)):
        field = initial[f"number_{slot + 1}"]
        if names and not field["visible"]:  # the API shows this label: say what the slot is for
            field["label"] = f"number {slot + 1} ({' or '.join(names)}, for the models that take it)"
    rows = actions.example_rows()
    compute = dict(concurrency_limit=limits.concurrency, concurrency_id="model")
    with gr.Row():
        model = gr.Dropdown(choices=store.names, value=default, label="model", scale=1)
        model_note = gr.Markdown(**initial["model_note"])
    with gr.Accordion("conditions (used by Generate and Edit)", open=True):
        with gr.Row():
            label = gr.Dropdown(label="label", allow_custom_value=True, **initial["label"])
            prompt = gr.Textbox(
                label=f"prompt (up to {limits.max_text_chars} characters)",
                elem_id="prompt",
                max_length=limits.max_text_chars,
                placeholder="a caption, e.g. a high loud tone",
                **initial["prompt"],
            )
        with gr.Row():
            numbers = [gr.Slider(step=0.01, **initial[f"number_{i + 1}"]) for i in range(NUMBER_SLOTS)]
        with gr.Accordion("negative conditions (guide away from these)", open=False), gr.Row():
            negative_label = gr.Dropdown(label="negative label", allow_custom_value=True, **initial["negative_label"])
            negative_prompt = gr.Textbox(
                label="negative prompt", max_length=limits.max_text_chars, **initial["negative_prompt"]
            )
    conditions = [label, prompt, *numbers]
    with gr.Tabs():
        with gr.Tab("Generate"):
            generate = _generate_tab(actions, initial, rows)
        with gr.Tab("Edit"):
            _edit_tab(actions, model, conditions, compute)
        with gr.Tab("Curves"):
            _curves_tab(actions, model, conditions, compute)
        with gr.Tab("Vocoder"):
            _vocoder_tab(actions, model, compute)
        with gr.Tab("About the model"):
            about = gr.Markdown(**initial["about"])
            config = gr.JSON(label="config.json", **initial["config"])
    duration, sampler, steps, guidance, seed, batch, button, examples, outputs = generate
    button.click(
        actions.generate,
        [
            model,
            label,
            prompt,
            negative_label,
            negative_prompt,
            *numbers,
            duration,
            sampler,
            steps,
            guidance,
            seed,
            batch,
        ],
        outputs,
        api_name="generate",
        **compute,
    )
    form = [
        label,
        negative_label,
        prompt,
        negative_prompt,
        *numbers,
        duration,
        sampler,
        steps,
        guidance,
        model_note,
        about,
        config,
    ]
    model.change(actions.form_updates, [model, label, prompt], form, api_visibility="private")
    examples.click(lambda index: actions.example(index, rows), examples, [model, seed, *form], api_visibility="private")


def _generate_tab(actions: DemoActions, initial: dict, rows: list[list]) -> tuple:
    limits = actions.limits
    with gr.Row():
        duration = gr.Slider(
            0.1,
            limits.max_seconds,
            step=0.05,
            label=f"duration (s, at most {limits.max_seconds:g})",
            **initial["duration"],
        )
        batch = gr.Slider(1, limits.max_batch, value=1, step=1, label=f"batch size (at most {limits.max_batch})")
    with gr.Row():
        sampler = gr.Dropdown(sorted(SAMPLERS), label="sampler", **initial["sampler"])
        steps = gr.Slider(1, limits.max_steps, step=1, label=f"steps (at most {limits.max_steps})", **initial["steps"])
        guidance = gr.Slider(0.0, MAX_GUIDANCE, step=0.1, label="guidance (1 = none)", **initial["guidance"])
    with gr.Row(equal_height=True):
        seed = gr.Number(
            value=0, precision=0, minimum=0, maximum=MAX_SEED, label="seed (clip i uses seed + i)", scale=3
        )
        dice = gr.Button("random seed", size="sm", scale=1)
    button = gr.Button("Generate", variant="primary", elem_id="generate")
    examples = gr.Dataset(
        components=["textbox", "textbox", "textbox", "number"],
        headers=["model", "label", "prompt", "seed"],
        samples=rows,
        type="index",
        label="examples (click one to fill the form)",
    )
    audios, images = [], []
    for slot in range(limits.max_batch):
        with gr.Row(equal_height=True):
            audios.append(
                gr.Audio(
                    label=f"clip {slot + 1}",
                    type="filepath",
                    interactive=False,
                    visible=slot == 0,
                    buttons=["download"],
                    elem_classes=["result-audio"],
                )
            )
            images.append(
                gr.Image(
                    label=f"spectrogram {slot + 1}",
                    type="filepath",
                    interactive=False,
                    visible=slot == 0,
                    height=220,
                    elem_classes=["result-spectrogram"],
                )
            )
    files = gr.File(label="download (wav)", file_count="multiple", interactive=False)
    status = gr.Markdown(label="status")
    dice.click(lambda: random.randint(0, MAX_SEED), None, seed, queue=False, api_visibility="private")
    return duration, sampler, steps, guidance, seed, batch, button, examples, audios + images + [files, status]


def _edit_tab(actions: DemoActions, model: gr.Dropdown, conditions: list, compute: dict) -> None:
    limits = actions.limits
    with gr.Row():
        source = gr.Audio(
            sources=["upload", "microphone"],
            type="filepath",
            label=f"audio to edit (upload or record; up to {limits.max_upload_seconds:g} s)",
        )
        before = gr.Image(label="before", type="filepath", interactive=False)
    with gr.Row():
        steps = gr.Slider(
            1, limits.max_steps, value=min(20, limits.max_steps), step=1, label=f"steps (at most {limits.max_steps})"
        )
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="seed")
    with gr.Tabs():
        with gr.Tab("Variation"):
            strength = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="strength (0 keeps the input, 1 ignores it)")
            vary = gr.Button("Vary", variant="primary")
        with gr.Tab("Inpaint / outpaint"):
            with gr.Row():
                start = gr.Number(value=0.2, minimum=0, label="span start (s)")
                end = gr.Number(value=0.5, minimum=0, label="span end (s)")
            region = gr.Radio(
                [("regenerate the span (inpaint)", "inside"), ("regenerate around the span (outpaint)", "outside")],
                value="inside",
                label="region",
            )
            inpaint = gr.Button("Inpaint / outpaint", variant="primary")
        with gr.Tab("Continue"):
            seconds = gr.Slider(
                0.1, limits.max_seconds, value=1.0, step=0.1, label=f"continue by (s, at most {limits.max_seconds:g})"
            )
            extend = gr.Button("Continue", variant="primary")
    with gr.Row():
        result = gr.Audio(label="result", type="filepath", interactive=False, buttons=["download"])
        after = gr.Image(label="after", type="filepath", interactive=False)
    status = gr.Markdown(label="status")
    outputs = [result, before, after, status]
    head = [model, source, *conditions]
    vary.click(actions.vary, head + [strength, steps, seed], outputs, api_name="vary", **compute)
    inpaint.click(actions.inpaint, head + [start, end, region, steps, seed], outputs, api_name="inpaint", **compute)
    extend.click(actions.continue_, head + [seconds, steps, seed], outputs, api_name="continue", **compute)


def _curves_tab(actions: DemoActions, model: gr.Dropdown, conditions: list, compute: dict) -> None:
    from audiodiff.controls import SHAPES

    limits = actions.limits
    gr.Markdown(
        "Generate along a pitch contour (f0) and a loudness envelope: take both from a recording (hum or sing a "
        "phrase), or pick shapes. For models trained with control curves (e.g. notes); the label and other "
        "conditions above still apply, and a given F0 replaces the pitch number."
    )
    with gr.Row():
        source = gr.Audio(
            sources=["upload", "microphone"],
            type="filepath",
            label=f"take the curves from (upload or record; up to {limits.max_upload_seconds:g} s; the first window is used)",
        )
        transpose = gr.Slider(-24, 24, value=0, step=1, label="transpose the recording's F0 (semitones)")
    with gr.Row():
        f0_shape = gr.Dropdown(
            [NO_CURVE] + sorted(SHAPES["f0"]), value="glide", label="or an f0 shape (without a recording)"
        )
        pitch = gr.Slider(24, 96, value=60, step=1, label="around MIDI pitch")
        loudness_shape = gr.Dropdown(
            [NO_CURVE] + sorted(SHAPES["loudness"]), value="crescendo", label="and a loudness shape"
        )
        level = gr.Slider(-50, -6, value=-20, step=1, label="around level (dBFS)")
    with gr.Row():
        steps = gr.Slider(
            1, limits.max_steps, value=min(20, limits.max_steps), step=1, label=f"steps (at most {limits.max_steps})"
        )
        guidance = gr.Slider(0.0, MAX_GUIDANCE, value=2.0, step=0.1, label="guidance (1 = none)")
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="seed")
    button = gr.Button("Generate along the curves", variant="primary")
    with gr.Row():
        result = gr.Audio(label="result", type="filepath", interactive=False, buttons=["download"])
        picture = gr.Image(
            label="asked curves (white, black) over the result; measured (cyan)", type="filepath", interactive=False
        )
    status = gr.Markdown(label="status")
    button.click(
        actions.curves,
        [model, source, transpose, f0_shape, pitch, loudness_shape, level, *conditions, steps, guidance, seed],
        [result, picture, status],
        api_name="curves",
        **compute,
    )


def _vocoder_tab(actions: DemoActions, model: gr.Dropdown, compute: dict) -> None:
    gr.Markdown(
        "The mel round trip: audio -> the model's log-mel -> audio, through the model's vocoder and through "
        f"Griffin-Lim ({GRIFFIN_LIM_ITERS} iterations), side by side. Mel models only; audio is resampled to the model's rate."
    )
    source = gr.Audio(
        sources=["upload", "microphone"],
        type="filepath",
        label=f"audio (upload or record; up to {actions.limits.max_upload_seconds:g} s)",
    )
    button = gr.Button("Round trip", variant="primary")
    outputs = []
    with gr.Row():
        for title in ("input (at the model's rate)", "the model's vocoder", "Griffin-Lim"):
            with gr.Column(min_width=220):
                outputs.append(gr.Audio(label=title, type="filepath", interactive=False, buttons=["download"]))
                outputs.append(gr.Image(label=f"{title}: spectrogram", type="filepath", interactive=False))
    timings = gr.Markdown(label="timings")
    button.click(actions.vocode, [model, source], outputs + [timings], api_name="vocode", **compute)


def launch(
    model_paths: Sequence[str | os.PathLike] = (),
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    limits: Limits | None = None,
    device: str = "cpu",
    prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> gr.Blocks:
    """Serve the page on `host:port` (127.0.0.1 unless told otherwise; port None picks a free
    one from 7860). With `prevent_thread_lock` it returns at once, serving from a thread."""
    limits = limits or Limits()
    app = build_app(model_paths, limits, device)
    # gradio's own start-up lines suggest `share=True` in `launch()`; ours name the command's flag
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=limits.max_upload_bytes,
        ssr_mode=False,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,
    )
    if not quiet:
        print(f"* Running on local URL:  {app.local_url}", flush=True)
        if not share:
            print("* For a public link as well, run `audiodiff demo --share`", flush=True)
    if not prevent_thread_lock:
        app.block_thread()
    return app
