"""The demo's models and limits: which checkpoints it serves, how it loads them, and the
bounds every input is checked against."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr

from audiodiff.bundled import bundled_names, bundled_path
from audiodiff.checkpoint import CONFIG, CheckpointError, read_json, resolve_checkpoint
from audiodiff.errors import UserError
from audiodiff.models.conditioning import ConditionSpec
from audiodiff.pipeline import Pipeline

DEFAULT_MODELS = ("digits-fast", "digits")  # the page opens with the first of these that is bundled
NO_CHOICE = ""  # a dropdown's "none" choice: that condition left out (unconditional on it)
NO_CURVE = "none"  # a curve shape choice: leave that curve out
GRIFFIN_LIM_ITERS = 32  # the baseline of the vocoder comparison
MAX_GUIDANCE = 10.0
MAX_SEED = 2**31 - 1
OUTPUT_MAX_AGE_S = 3600  # results written for the page are deleted after this long
UPSAMPLER = "upsampler-44k"  # the bundled upsampler behind the "full band" checkbox
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
    max_pads: int = 12  # clips in one drum kit (one per label, made in one batch)
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


def discover_adapters(adapters: dict[str, float]) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """Picker entries for adapter runs {path: scale}, one each: picker name ("notes + my-lora",
    "x0.8" where the scale is not 1) -> the base the adapter names, and picker name -> the adapter
    to attach. A folder that is not an adapter, or a scale that is not finite, is an error now."""
    from audiodiff.adapters import check_scale, read_adapter

    sources, attached = {}, {}
    for path, scale in adapters.items():
        scale = check_scale(path, scale)
        folder, config = read_adapter(path)
        base = str(config["base"])
        name = f"{Path(base).name} + {_display_name(folder, Path(path).expanduser())}"
        name += f" x{scale:g}" if scale != 1 else ""
        sources[name] = base if bundled_path(base) else str(resolve_checkpoint(base))
        attached[name] = {str(path): scale}
    return sources, attached


class ModelStore:
    """Loads each model once, on first use (the page's form reads every model's condition specs
    when it is built), and the upsampler once, when a request first asks for full band; safe to
    call from the server's worker threads. `upsampler`: a bundled name, a checkpoint folder or an
    `audiodiff.upsampler.Upsampler`. `adapters`: picker name -> {adapter path: scale} attached to
    that entry's model (`discover_adapters`)."""

    def __init__(
        self,
        sources: dict[str, str],
        device: str = "cpu",
        upsampler=UPSAMPLER,
        adapters: dict[str, dict[str, float]] | None = None,
    ):
        self.sources = dict(sources)
        self.adapters = dict(adapters or {})
        self.device = device
        self.load_count = 0
        self._pipes: dict[str, Pipeline] = {}
        self._upsampler = upsampler if isinstance(upsampler, (str, os.PathLike)) else upsampler.to(device)
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

    def specs(self, name: str) -> list[ConditionSpec]:
        """How the model's conditions are offered (`Pipeline.condition_specs`); loads the model."""
        return self.get(name).condition_specs()

    def get(self, name: str) -> Pipeline:
        with self._lock:
            if self._check(name) not in self._pipes:
                self._pipes[name] = Pipeline.from_pretrained(
                    self.sources[name], device=self.device, adapters=self.adapters.get(name)
                )
                self.load_count += 1
            return self._pipes[name]

    def upsampler(self):
        """The `Upsampler` behind "full band", loaded on first use; never set on a shared Pipeline."""
        with self._lock:
            if isinstance(self._upsampler, (str, os.PathLike)):
                from audiodiff.upsampler import Upsampler

                self._upsampler = Upsampler.from_pretrained(self._upsampler).to(self.device)
            return self._upsampler


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


def _seconds(seconds: float) -> str:
    return f"{seconds:.2f} s"
