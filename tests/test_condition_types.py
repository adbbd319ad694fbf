"""A new condition type is one class: this module alone defines a toggle (on / off), registers
it, and the run config, the data, training, generation, the CLI's help and the demo's form all
take it."""

import json
import math

import pytest
import torch
from torch import nn

from audiodiff.checkpoint import resolve_checkpoint
from audiodiff.cli import main
from audiodiff.models.condition_base import Condition, ConditionError, ConditionSpec, condition_type
from audiodiff.pipeline import Pipeline
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.trainer import Trainer
from tests.util import tiny_config

WORDS = {"yes": 1.0, "on": 1.0, "true": 1.0, "1": 1.0, "no": 0.0, "off": 0.0, "false": 0.0, "0": 0.0}


@condition_type("toggle")
class ToggleCondition(Condition):
    """On or off: `FloatTensor[batch]` of 1 / 0, NaN = null."""

    null_value, dtype = math.nan, torch.float32

    def __init__(self, name: str, embed_dim: int):
        super().__init__(name)
        self.embed = nn.Embedding(3, embed_dim)  # off, on, null

    @classmethod
    def from_config(cls, name: str, options: dict, embed_dim: int) -> "ToggleCondition":
        return cls(name, embed_dim)

    def check(self, value) -> float:
        if isinstance(value, str) and value.lower() in WORDS:
            return WORDS[value.lower()]
        if isinstance(value, (bool, int, float)) and (value in (0, 1) or math.isnan(value)):
            return float(value)
        raise ConditionError(f"{self.name}={value!r}: give yes or no")

    def spec(self) -> ConditionSpec:
        return ConditionSpec(self.name, "toggle", "on or off", choices=("yes", "no"))

    def forward(self, values, device):
        values = values.to(device).float()
        return self.embed(torch.where(torch.isnan(values), 2, values).long()), None


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth_dir):
    """A two-step run on the synth set with a `muted` field in its manifest."""
    rows = [json.loads(line) for line in (synth_dir / "manifest.jsonl").read_text().splitlines()]
    data = tmp_path_factory.mktemp("toggle-data")
    for index, row in enumerate(rows):
        row["path"] = str(synth_dir / row["path"])
        row["muted"] = index % 2
    (data / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path_factory.mktemp("toggle") / "run"
    config = tiny_config(data, out, conditioning={"labels": "auto", "extra": {"muted": {"kind": "toggle"}}})
    task = DiffusionTask(config, verbose=False)
    Trainer(task, config.train, progress=False).fit()
    return out, task


def test_the_data_carries_the_new_condition_into_training(run):
    _, task = run
    values = {task.dataset[index]["muted"] for index in range(len(task.dataset))}
    assert values == {0.0, 1.0}


def test_a_model_with_the_new_condition_generates_with_it(run):
    pipe = Pipeline.from_pretrained(run[0])
    assert "muted" in pipe.conditions
    out = pipe.generate(label="chirp", muted="yes", steps=2)
    assert torch.isfinite(out.audio).all() and out.settings.conditions["muted"] == "yes"
    with pytest.raises(ConditionError, match="give yes or no"):
        pipe.generate(muted="maybe", steps=2)


def test_the_cli_offers_the_new_condition_from_its_spec(run, capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["generate", "--checkpoint", str(run[0]), "--help"])
    assert "muted (toggle): on or off; one of yes, no" in capsys.readouterr().out
    assert main(["generate", "--checkpoint", str(run[0]), "--cond", "muted=no", "--steps", "2", "--out", str(tmp_path / "x.wav")]) == 0  # fmt: skip


def test_the_demo_offers_the_new_condition_from_its_spec(run):
    pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'audiodiff[demo]'")
    from audiodiff.demo import DemoActions, Limits, ModelStore, build_app

    store = ModelStore({"run": str(resolve_checkpoint(run[0]))})
    form = DemoActions(store, Limits()).form("run")
    assert form["muted"]["visible"] and [value for _, value in form["muted"]["choices"]] == ["", "yes", "no"]
    assert [value for _, value in form["negative_muted"]["choices"]] == ["", "yes", "no"]
    generate = build_app(store=store).get_api_info()["named_endpoints"]["/generate"]["parameters"]
    widgets = {parameter["parameter_name"]: parameter["component"] for parameter in generate}
    assert widgets["muted"] == "Dropdown" and widgets["negative_muted"] == "Dropdown"


def test_the_demo_hands_the_new_condition_to_its_check(run, tmp_path):
    pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'audiodiff[demo]'")
    from gradio import Error

    from audiodiff.demo import DemoActions, Limits, ModelStore

    actions = DemoActions(ModelStore({"run": str(run[0])}), Limits(), tmp_path)
    quiet = dict(progress=lambda *args, **kwargs: None)
    outputs = actions.generate(
        "run", 0.25, "ddim", 2, 2.0, 0, 1, **quiet, label="chirp", muted="yes", negative_muted="no"
    )
    assert "1 clip(s)" in outputs[-1]
    with pytest.raises(Error, match="give yes or no"):
        actions.generate("run", 0.25, "ddim", 2, 2.0, 0, 1, **quiet, muted="maybe")
