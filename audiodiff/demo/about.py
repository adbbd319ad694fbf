"""What the page says about a model: the note beside the model picker and the About tab."""

from __future__ import annotations

from typing import Any

from audiodiff.pipeline import Pipeline


def model_note(name: str, pipe: Pipeline) -> str:
    """One line beside the model picker: what the model is and what it takes."""
    kind = pipe.space.title
    conditions = ", ".join(pipe.conditions) or "none (unconditional)"
    student = pipe.config.student
    guidance = "guidance an input" if student and student.guidance_range else "guidance fixed at distillation"
    fast = (
        f"; a few-step student of {student.base} ({student.method} distillation, {student.steps} step(s), {guidance})"
        if student
        else ""
    )
    return (
        f"**{name}**: {kind} model, {pipe.sample_rate} Hz, {pipe.default_duration():g} s clips; "
        f"conditions: {conditions}{fast}"
    )


def about_text(name: str, pipe: Pipeline, source: str) -> str:
    """The model in a page of Markdown: what it takes, its shape, how it was trained (`source`:
    where it was loaded from, where its info does not say)."""
    config, info = pipe.config, pipe.info
    parameters = sum(p.numel() for p in pipe.model.parameters())
    unet = config.model
    lines = [f"### {name}", f"`{info.get('path', source)}`", ""]
    lines.append(
        f"- **representation**: {pipe.space.title}, {pipe.sample_rate} Hz, "
        f"{config.data.channels} channel(s), {pipe.default_duration():g} s training clips"
    )
    lines.append(f"- **conditions**:{_conditions_text(pipe)}")
    if pipe.mel_spec is not None:
        mel = pipe.mel_spec
        lines.append(
            f"- **MelSpec**: n_fft {mel.n_fft}, hop {mel.hop_length}, {mel.n_mels} mels, "
            f"{mel.f_min:g}..{mel.f_max if mel.f_max is not None else mel.sample_rate / 2:g} Hz"
        )
    lines.append(
        f"- **architecture**: U-Net dims={unet.dims}, channels {unet.channels} x {list(unet.channel_mults)}, "
        f"{unet.num_res_blocks} res block(s) per level, attention at levels {list(unet.attention_levels)}; "
        f"**{parameters / 1e6:.2f} M parameters**"
    )
    sampling = config.sampling
    guide = f" ({', '.join(sampling.guide)}; the rest at {sampling.rest_guidance:g})" if sampling.guide else ""
    low, high = sampling.guidance_interval
    interval = f" at noise levels {low:g}-{high:g}" if (low, high) != (0.0, 1.0) else ""
    lines.append(
        f"- **sampling defaults**: {sampling.sampler}, {sampling.steps} steps, guidance {sampling.guidance:g}"
        f"{guide}{interval}, vocoder {sampling.vocoder}"
    )
    lines += ["", "#### Training", _training_text(info)]
    metrics = info.get("metrics")
    if metrics:
        lines += ["", "#### Metrics", _metrics_text(metrics)]
    return "\n".join(lines)


def _conditions_text(pipe: Pipeline) -> str:
    """Each condition as its spec describes it (the CLI's `--cond` help says the same)."""
    specs = pipe.condition_specs()
    text = pipe.config.conditioning.text
    lines = [f"  - {spec.describe()}" for spec in specs]
    if text is not None:
        words = f", {len(text.vocab)} words" if text.vocab else ""
        lines.append(f"  - the text encoder: {text.encoder}{words}")
    return "\n" + "\n".join(lines) if specs else " none (unconditional)"


def _training_text(info: dict) -> str:
    training = info.get("training")
    if not training:
        return "no training record in this checkpoint"
    text = (
        f"step {training.get('step')} of {training.get('steps')}, {training.get('wall_seconds')} s on "
        f"{training.get('device')} x{training.get('world_size')}, {training.get('precision')}, "
        f"torch {training.get('torch')}, {training.get('date')}"
    )
    dataset = info.get("dataset") or {}
    if dataset:
        skipped = sum((dataset.get("skipped") or {}).values()) if isinstance(dataset.get("skipped"), dict) else 0
        text += f"; data: {dataset.get('kept')} clips from `{dataset.get('source')}` ({dataset.get('layout')}), {skipped} skipped"
    return text


def _metrics_text(metrics: Any) -> str:
    if isinstance(metrics, dict) and all(not isinstance(v, (dict, list)) for v in metrics.values()):
        return "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    rows = metrics.get("scores") if isinstance(metrics, dict) else None
    if isinstance(rows, list) and all(isinstance(r, dict) and "title" in r for r in rows):
        return "| score | model | real-vs-real floor |\n|---|---|---|\n" + "\n".join(
            f"| {r['title']} | {r.get('model')} | {r.get('floor')} |" for r in rows
        )
    return "see `metrics` in the config below"
