"""The README's and the docs pages' examples work as written from a fresh clone: each command
parses, each file a command reads is made by an earlier command (the README first, then docs/*.md
in name order), every output lands somewhere git ignores, and the README's Python editing block
runs."""

import re
import shlex
import subprocess
import warnings
from pathlib import Path

import pytest

from audiodiff.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = {
    "README.md": README,
    **{f"docs/{page.name}": page.read_text() for page in sorted((ROOT / "docs").glob("*.md"))},
}
OWN_FOLDER = "my_audio/"  # the README's stand-in for the reader's own data: outputs there are theirs


def bash_commands(pages: list[str] | None = None) -> list[list[str]]:
    """Every `audiodiff ...` command of the bash blocks of `pages` (default: the README, then every
    docs page), as argv without the program."""
    return [argv for _, argv in page_commands(pages)]


def page_commands(pages: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """(page, argv) for every `audiodiff ...` command of the pages' bash blocks, in order."""
    commands = []
    for page in pages or PAGES:
        for block in re.findall(r"```bash\n(.*?)```", PAGES[page], re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["audiodiff"]:
                    commands.append((page, words[1:]))
    return commands


def parsed(argv: list[str]):
    return build_parser().parse_args(argv)


def reads(args) -> list[str]:
    if args.command == "generate" and args.settings:
        return [args.settings]
    return [args.input] if args.command in ("vary", "edit", "inpaint", "continue", "vocode") else []


def writes(args) -> list[str]:
    """The files a command writes; for an output folder, a file inside it."""
    out = args.output if args.command == "vocode" else getattr(args, "out", None)
    if not out:
        return []
    out = Path(out) if Path(out).suffix else Path(out) / "clip.wav"
    extra = [f"{out}.json"] if args.command == "export" else []  # the exported model's sidecar
    return [str(out), *extra] + ([str(out.with_suffix(".png"))] if getattr(args, "plot", False) else [])


def sidecars(args) -> list[str]:
    """The settings sidecar `audiodiff generate` writes beside each clip (a file `--settings` reads)."""
    if args.command != "generate" or args.settings:
        return []
    return [str(Path(path).with_suffix(".json")) for path in writes(args) if path.endswith(".wav")]


def test_every_readme_command_parses():
    commands = page_commands()
    assert len(commands) > 20
    assert len(bash_commands(["README.md"])) > 10
    for page, argv in commands:
        try:
            parsed(argv)
        except SystemExit:
            pytest.fail(f"{page}: audiodiff {shlex.join(argv)} does not parse")


def test_every_file_a_readme_edit_reads_is_made_by_an_earlier_command():
    made: set[str] = set()
    for page, argv in page_commands():
        args = parsed(argv)
        for path in reads(args):
            assert path in made, f"{page}: audiodiff {shlex.join(argv)} reads {path}, which no earlier command makes"
        made.update(writes(args) + sidecars(args))


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
