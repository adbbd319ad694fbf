"""The README's generation and editing examples work as written from a fresh clone: each command
parses, each file a command reads is made by an earlier command, every output lands somewhere
git ignores, and the Python editing block runs."""

import re
import shlex
import subprocess
import warnings
from pathlib import Path

import pytest

from audiodiff.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
OWN_FOLDER = "my_audio/"  # the README's stand-in for the reader's own data: outputs there are theirs


def bash_commands() -> list[list[str]]:
    """Every `audiodiff ...` command of the README's bash blocks, as argv without the program."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["audiodiff"]:
                commands.append(words[1:])
    return commands


def parsed(argv: list[str]):
    return build_parser().parse_args(argv)


def reads(args) -> list[str]:
    return [args.input] if args.command in ("vary", "inpaint", "continue", "vocode") else []


def writes(args) -> list[str]:
    """The files a command writes; for an output folder, a file inside it."""
    out = args.output if args.command == "vocode" else getattr(args, "out", None)
    if not out:
        return []
    out = Path(out) if Path(out).suffix else Path(out) / "clip.wav"
    extra = [f"{out}.json"] if args.command == "export" else []  # the exported model's sidecar
    return [str(out), *extra] + ([str(out.with_suffix(".png"))] if getattr(args, "plot", False) else [])


def test_every_readme_command_parses():
    commands = bash_commands()
    assert len(commands) > 20
    for argv in commands:
        try:
            parsed(argv)
        except SystemExit:
            pytest.fail(f"README: audiodiff {shlex.join(argv)} does not parse")


def test_every_file_a_readme_edit_reads_is_made_by_an_earlier_command():
    made: set[str] = set()
    for argv in bash_commands():
        args = parsed(argv)
        for path in reads(args):
            assert path in made, f"README: audiodiff {shlex.join(argv)} reads {path}, which no earlier command makes"
        made.update(writes(args))


def test_every_readme_output_is_git_ignored():
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    outputs = [path for argv in bash_commands() for path in writes(parsed(argv)) if not path.startswith(OWN_FOLDER)]
    assert "in.wav" in outputs and "vocoder.onnx" in outputs
    result = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "--no-index", "--verbose", "--non-matching", *outputs],
        capture_output=True,
        text=True,
    )
    tracked = [line.split("\t")[-1] for line in result.stdout.splitlines() if line.startswith("::")]
    assert not tracked, f"README command outputs that git would pick up: {tracked}; add them to .gitignore"


def test_the_readme_python_editing_block_runs():
    """The block as written, on the bundled one-step model (the same labels as "digits") so it is quick."""
    block = next(b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "pipe.vary(" in b)
    import audiodiff

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="no condition given")
        exec(block, {"audiodiff": audiodiff, "pipe": audiodiff.Pipeline.from_pretrained("digits-fast")})
