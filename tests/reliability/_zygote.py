"""Imported once by the fork server of `helpers.Launcher`: everything a training process needs,
so each forked process starts training at once instead of spending seconds importing."""

import torch._dynamo  # noqa: F401  (the meta-device size check in build_model imports it)

import audiodiff.cli  # noqa: F401
import audiodiff.train.diffusion  # noqa: F401
import audiodiff.train.trainer  # noqa: F401
from audiodiff.plots import _pyplot

_pyplot()
