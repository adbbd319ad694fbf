"""Markdown pieces shared by the Figures sections (`benchmarks/figures.py`): numbers, tables, the
line naming a result's machine, date and command, and the model and guidance a result was measured with."""

from __future__ import annotations

__all__ = ["guidance_phrase", "measured_model", "number", "provenance", "table"]


def number(value: float | None, digits: int = 2) -> str:
    """`value` to `digits` decimals; a dash where it was not measured."""
    return "–" if value is None else f"{value:.{digits}f}"


def provenance(result: dict) -> str:
    """One italic line under each section: the machine, the date and the command that gave `result`."""
    machine = result.get("machine") or {}
    threads = machine.get("threads")
    bf16 = machine.get("native_bf16")
    parts = [
        machine.get("cpu_model") or machine.get("cpu") or "unknown CPU",
        f"{threads} threads" if threads else None,
        f"torch {machine['torch']}" if machine.get("torch") else None,
        None if bf16 is None else ("native bf16" if bf16 else "no native bf16"),
    ]
    load = machine.get("load_average") or machine.get("load_average_before")
    if load:
        parts.append(f"load average {load[0]:.1f}")
    run = f"`{result['command']}`" if result.get("command") else "command not recorded"
    return f"_{', '.join(p for p in parts if p)}; {result.get('date', 'date unknown')}; {run}_"


def measured_model(result: dict) -> str:
    """The model a result was measured on, flagged when it was still in training."""
    step, planned = result.get("training_step"), result.get("training_steps_planned")
    text = f"{result.get('checkpoint')} (training step {step}"
    if step is not None and planned and step < planned:
        text += f" of {planned}: a model still in training, numbers for wiring only"
    return text + ")"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table, one line per row."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def guidance_phrase(sampling: dict) -> str:
    """'guidance 2', or with guide= and an interval: 'guidance 3 for label at noise levels 0.5-1, 2.5 otherwise'."""
    guided = sampling.get("guided_conditions", sampling.get("guide"))
    text = f"guidance {sampling['guidance']:g}"
    if guided and guided != "all":
        text += f" for {', '.join(guided)}"
    low, high = sampling.get("guidance_interval") or (0.0, 1.0)
    if (low, high) != (0.0, 1.0):
        text += f" at noise levels {low:g}-{high:g}"
    if guided and guided != "all":
        text += f", {sampling.get('rest_guidance', 1.0):g} otherwise"
    return text
