"""The Gradio page: generate, edit, make drum kits, compare vocoders and read about a model, over `Pipeline`.

    from audiodiff.demo import launch
    launch(["runs/quickstart"])            # http://127.0.0.1:7860

`build_app` makes the `gr.Blocks` (queued, with a concurrency limit); `launch` serves it. Every
input is bounded by a `Limits`, and every user mistake (a bad upload, a label the model does not
know, a value over a limit) comes back as a `gr.Error` that says what was wrong and the limit.
The conditions' widgets are built from the models' condition specs (`audiodiff.demo.form`); the
Drums tab (`audiodiff.demo.kit`) serves any model with labels.
"""

from audiodiff.demo.actions import DemoActions
from audiodiff.demo.page import build_app, launch
from audiodiff.demo.store import (
    GRIFFIN_LIM_ITERS,
    MAX_GUIDANCE,
    MAX_SEED,
    NO_MODEL_HELP,
    Limits,
    ModelStore,
    discover_adapters,
    discover_models,
)

__all__ = [
    "DemoActions",
    "GRIFFIN_LIM_ITERS",
    "Limits",
    "MAX_GUIDANCE",
    "MAX_SEED",
    "ModelStore",
    "NO_MODEL_HELP",
    "build_app",
    "discover_adapters",
    "discover_models",
    "launch",
]
