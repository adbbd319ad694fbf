"""Every error a user can fix derives from `UserError` (what the command line and the demo catch)
and keeps its built-in base, so `except ValueError` / `except RuntimeError` still see it."""

import pytest

from audiodiff.audio import AudioError
from audiodiff.checkpoint import CheckpointError
from audiodiff.cli import COMMANDS, main
from audiodiff.config import ConfigError
from audiodiff.data.builders import BuildError
from audiodiff.data.dataset import DatasetError
from audiodiff.errors import UserError
from audiodiff.metrics.distribution import TooFewSamplesError
from audiodiff.metrics.sets import EvaluationError
from audiodiff.models.condition_base import ConditionError
from audiodiff.train.errors import TrainingError
from audiodiff.vocoder import VocoderError

BUILTIN_BASES = {
    AudioError: ValueError,
    BuildError: RuntimeError,
    CheckpointError: ValueError,
    ConditionError: ValueError,
    ConfigError: ValueError,
    DatasetError: ValueError,
    EvaluationError: ValueError,
    TooFewSamplesError: ValueError,
    TrainingError: RuntimeError,
    VocoderError: ValueError,
}


@pytest.mark.parametrize("error", BUILTIN_BASES, ids=lambda error: error.__name__)
def test_a_user_error_is_a_user_error_and_keeps_its_builtin_base(error):
    assert issubclass(error, UserError) and issubclass(error, BUILTIN_BASES[error])


def test_the_command_line_prints_any_user_error_and_exits_with_2(monkeypatch, capsys):
    def run(args):
        raise TrainingError("the run cannot go on; lower train.lr")

    monkeypatch.setitem(COMMANDS, "fail", (lambda parser: None, run, "always fails"))
    assert main(["fail"]) == 2
    error = capsys.readouterr().err
    assert "error: the run cannot go on; lower train.lr" in error and "Traceback" not in error
