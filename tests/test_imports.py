"""The package's import graph has no cycles, imports inside functions included."""

import ast
from pathlib import Path

import audiodiff

PACKAGE_DIR = Path(audiodiff.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every audiodiff module that `name` imports anywhere in its file; `from x import y` imports
    `x` (it runs first) and also `x.y` where that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in modules and module != name}


def find_cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """One cycle per group of modules that import each other (Tarjan's strongly connected
    components): a closed path through the group's first module, and the group."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                groups.append(set(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [path_within(graph, group) for group in groups]


def path_within(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest closed path through the group's first module, and the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for target in sorted(graph[node] & group):
            if target == start:
                return paths[node] + [start], group
            if target not in paths:
                paths[target] = paths[node] + [target]
                frontier.append(target)
    raise AssertionError(f"no cycle through {start}")


def test_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [(["a", "b", "c", "a"], {"a", "b", "c"})]


def test_relative_and_submodule_imports_are_edges(tmp_path):
    modules = {"audiodiff.metrics": None, "audiodiff.metrics.signal": None, "audiodiff.audio": None}
    path = tmp_path / "audiodiff" / "metrics" / "evaluate.py"
    path.parent.mkdir(parents=True)
    path.write_text("def f():\n    from . import signal\n    from ..audio import MelSpec\n")
    found = imported_modules("audiodiff.metrics.evaluate", path, modules)
    assert found == {"audiodiff.metrics", "audiodiff.metrics.signal", "audiodiff.audio"}


def test_package_has_no_import_cycles():
    modules = package_modules()
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(
        f"{' -> '.join(path)} (modules in this cycle: {', '.join(sorted(group))})" for path, group in cycles
    )


def test_training_imports_no_inference_code():
    """The model layer serves both sides: training modules never import the pipeline or its
    editing methods at import time (previews import the pipeline when they run)."""
    import subprocess
    import sys

    code = (
        "import sys, audiodiff.train.diffusion, audiodiff.train.distill, audiodiff.train.trainer, "
        "audiodiff.train.vocoder, audiodiff.train.autoencoder;"
        "print(sorted(m for m in sys.modules if m in ('audiodiff.pipeline', 'audiodiff.editing', 'audiodiff.demo')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
