"""A user mistake on a generate, edit, vocode, export, eval or demo command is one `error:` line
that names the value and what it may be, exit status 2, no traceback and nothing sampled first.
The commands run as a user runs them (a subprocess, as in tests/test_cli.py), on the bundled
one-step model."""

import math
import re

import pytest
import soundfile
import torch

from tests.test_cli import run_cli

MODEL = ["--model", "digits-fast"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 0.5 s tone at 16 kHz to edit."""
    path = tmp_path_factory.mktemp("mistakes") / "in.wav"
    t = torch.arange(8000) / 16000
    soundfile.write(str(path), (0.3 * torch.sin(2 * math.pi * 440 * t)).numpy(), 16000)
    return path


# case -> (arguments; {clip} is the input file, {out} the output path), what the message must say
CASES = {
    "generate --steps 0": (
        ["generate", *MODEL, "--label", "seven", "--steps", "0"],
        r"steps=0: must be a whole number between 1 and 1000",
    ),
    "generate --steps 5000": (
        ["generate", *MODEL, "--steps", "5000"],
        r"steps=5000: must be a whole number between 1 and 1000",
    ),
    "generate --n 0": (
        ["generate", *MODEL, "--label", "seven", "--n", "0"],
        r"n=0: must be a whole number of clips, at least 1",
    ),
    "generate --sampler foo": (
        ["generate", *MODEL, "--sampler", "foo"],
        r"invalid choice: 'foo' \(choose from .*'ddim'",
    ),
    "generate --duration 0": (
        ["generate", *MODEL, "--duration", "0"],
        r"duration=0 s: must be more than 0 and at most 600 seconds",
    ),
    "generate --duration 1000": (
        ["generate", *MODEL, "--duration", "1000"],
        r"duration=1000 s: must be more than 0 and at most 600",
    ),
    "generate --guidance nan": (
        ["generate", *MODEL, "--label", "seven", "--guidance", "nan"],
        r"guidance=nan: must be a finite number",
    ),
    "generate --seed 2**70": (
        ["generate", *MODEL, "--seed", str(2**70)],
        r"seed=\d+: must be a whole number between 0 and 2\*\*63 - 1",
    ),
    "generate --label eleven": (
        ["generate", *MODEL, "--label", "eleven"],
        r"unknown label 'eleven'; this model knows \[.*'seven'",
    ),
    "generate --number pitch=high": (
        ["generate", *MODEL, "--number", "pitch=high"],
        r"--number 'pitch=high': expected NAME=VALUE",
    ),
    "generate --model nosuch": (
        ["generate", "--model", "nosuch"],
        r"nosuch: no such checkpoint .*bundled models: \[.*'digits'",
    ),
    "vary missing input": (["vary", *MODEL, "{missing}", "--label", "seven"], r"missing.wav: no such file"),
    "vary --strength 1.5": (
        ["vary", *MODEL, "{clip}", "--strength", "1.5"],
        r"strength=1.5: must be between 0 .* and 1",
    ),
    "vary --strength -0.1": (
        ["vary", *MODEL, "{clip}", "--strength", "-0.1"],
        r"strength=-0.1: must be between 0 .* and 1",
    ),
    "vary --strength nan": (
        ["vary", *MODEL, "{clip}", "--strength", "nan"],
        r"strength=nan: must be between 0 .* and 1",
    ),
    "inpaint missing input": (
        ["inpaint", *MODEL, "{missing}", "--start", "0.1", "--end", "0.2"],
        r"missing.wav: no such file",
    ),
    "inpaint --start after --end": (
        ["inpaint", *MODEL, "{clip}", "--start", "0.4", "--end", "0.2"],
        r"span 0.4..0.2 s is outside the audio \(0..0.500 s\) or empty; give 0 <= start < end <= 0.500",
    ),
    "inpaint --end past the audio": (
        ["inpaint", *MODEL, "{clip}", "--start", "0.1", "--end", "5"],
        r"span 0.1..5 s is outside the audio",
    ),
    "inpaint --resample-steps 0": (
        ["inpaint", *MODEL, "{clip}", "--start", "0.1", "--end", "0.2", "--resample-steps", "0"],
        r"resample_steps=0: must be a whole number between 1 and 100",
    ),
    "continue missing input": (["continue", *MODEL, "{missing}", "--seconds", "1"], r"missing.wav: no such file"),
    "continue --seconds -1": (
        ["continue", *MODEL, "{clip}", "--seconds", "-1"],
        r"seconds=-1 s: must be more than 0 and at most 600",
    ),
    "continue --seconds 0": (
        ["continue", *MODEL, "{clip}", "--seconds", "0"],
        r"seconds=0 s: must be more than 0 and at most 600",
    ),
    "vocode missing input": (
        ["vocode", "--vocoder", "vocoder-16k", "{missing}", "{out}"],
        r"missing.wav: no such file",
    ),
    "vocode --vocoder nosuch": (
        ["vocode", "--vocoder", "nosuch", "{clip}", "{out}"],
        r"nosuch: no such .*bundled vocoders: \['vocoder-16k', 'vocoder-16k-real'\]",
    ),
    "export --vocoder griffin_lim": (
        ["export", "--vocoder", "griffin_lim"],
        r"griffin_lim has no weights to export; .*'vocoder-16k'",
    ),
    "eval --sampler foo": (
        ["eval", "--checkpoint", "digits-fast", "--sampler", "foo"],
        r"invalid choice: 'foo' \(choose from .*'ddim'",
    ),
    "eval without --reference": (["eval", "--checkpoint", "digits-fast"], r"audiodiff eval needs --reference"),
    "demo --port 99999": (["demo", "--port", "99999"], r"'99999': a port is a whole number from 1 to 65535"),
    "demo --device nonsense": (["demo", "--device", "nonsense"], r"--device nonsense: not a device; use cpu, cuda"),
}

NO_OUT = ("vocode", "demo", "eval")  # commands without --out (vocode's output is positional; eval's is optional)


@pytest.fixture(scope="module")
def refusals(clip, tmp_path_factory):
    """Every case's command, run as its own process, two at a time (each is mostly start-up):
    case -> (the process's result, the output path it must not write)."""
    from concurrent.futures import ThreadPoolExecutor

    def launch(case):
        folder = tmp_path_factory.mktemp("case")
        out = folder / "out.wav"
        arguments = [a.format(clip=clip, missing=folder / "missing.wav", out=out) for a in CASES[case][0]]
        if arguments[0] not in NO_OUT:
            arguments += ["--out", str(folder / "onnx.onnx" if arguments[0] == "export" else out)]
        return run_cli(*arguments, check=False), out

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(CASES, pool.map(launch, CASES)))


@pytest.mark.parametrize("case", list(CASES))
def test_a_mistake_is_one_error_line_naming_the_value(case, refusals):
    message = CASES[case][1]
    result, out = refusals[case]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(errors) == 1, result.stderr
    assert re.search(message, errors[0]), errors[0]
    assert "sampling:" not in result.stderr and not out.exists(), f"{case}: sampled or wrote before refusing"


def test_a_conditioned_model_sampled_without_conditions_says_so_once(tmp_path):
    result = run_cli("generate", *MODEL, "--out", tmp_path / "x.wav")
    notices = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert notices == [
        "warning: no condition given, so this samples unconditionally; the model takes label (e.g. 'eight') or text"
    ]


def test_a_conditioned_request_has_no_notice(tmp_path):
    result = run_cli("generate", *MODEL, "--label", "seven", "--out", tmp_path / "x.wav")
    assert "warning:" not in result.stderr
