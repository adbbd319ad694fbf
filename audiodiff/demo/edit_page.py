"""The Edit tab's layout: one upload, its variation, inpainting, continuation and edit by
inversion, wired to `DemoActions` (their handlers are in `audiodiff.demo.edit_actions`)."""

from __future__ import annotations

import gradio as gr

from audiodiff.demo.actions import DemoActions
from audiodiff.demo.form import full_band_box
from audiodiff.demo.store import MAX_SEED

__all__ = ["edit_tab"]


def edit_tab(actions: DemoActions, model: gr.Dropdown, conditions: dict, compute: dict, inversion: dict) -> None:
    """Variation, inpainting, continuation and edit by inversion of one upload; `inversion` is
    the source label dropdown's settings for the first model (`DemoActions.inversion_source`)."""
    limits = actions.limits
    with gr.Row():
        source = gr.Audio(
            sources=["upload", "microphone"],
            type="filepath",
            label=f"audio to edit (upload or record; up to {limits.max_upload_seconds:g} s)",
            elem_id="edit-audio",
        )
        before = gr.Image(label="before", type="filepath", interactive=False)
    with gr.Row():
        steps = gr.Slider(
            1, limits.max_steps, value=min(20, limits.max_steps), step=1, label=f"steps (at most {limits.max_steps})"
        )
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="seed")
        full_band = full_band_box()
    with gr.Tabs():
        with gr.Tab("Variation"):
            strength = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="strength (0 keeps the input, 1 ignores it)")
            method = gr.Radio(
                [
                    ("noise the input, then sample back", "noise"),
                    ("invert the input to its noise (keeps timing)", "inversion"),
                ],
                value="noise",
                label="method",
            )
            vary = gr.Button("Vary", variant="primary")
        with gr.Tab("Inpaint / outpaint"):
            with gr.Row():
                start = gr.Number(value=0.2, minimum=0, label="span start (s)")
                end = gr.Number(value=0.5, minimum=0, label="span end (s)")
            region = gr.Radio(
                [("regenerate the span (inpaint)", "inside"), ("regenerate around the span (outpaint)", "outside")],
                value="inside",
                label="region",
            )
            inpaint = gr.Button("Inpaint / outpaint", variant="primary")
        with gr.Tab("Continue"):
            seconds = gr.Slider(
                0.1, limits.max_seconds, value=1.0, step=0.1, label=f"continue by (s, at most {limits.max_seconds:g})"
            )
            extend = gr.Button("Continue", variant="primary")
        with gr.Tab("Edit by inversion"):
            gr.Markdown(
                "Invert the clip under what it is now, then sample it back under the conditions above: the "
                "label changes, the timing (and the other conditions, such as the pitch) stay."
            )
            with gr.Row():
                source_label = gr.Dropdown(label="what the clip is now", allow_custom_value=True, **inversion)
                inversion_strength = gr.Slider(
                    0.05, 1.0, value=1.0, step=0.05, label="how far to invert (1 = all the way to noise)"
                )
                away = gr.Checkbox(
                    value=False,
                    label="guide away from the source",
                    info="guidance from the source label towards the target instead of from none",
                )
            invert = gr.Button("Edit by inversion", variant="primary", elem_id="edit-by-inversion")
    with gr.Row():
        result = gr.Audio(label="result", type="filepath", interactive=False, buttons=["download"])
        after = gr.Image(label="after", type="filepath", interactive=False)
    status = gr.Markdown(label="status", elem_id="edit-status")
    outputs = [result, before, after, status]
    head, named = [model, source], dict(inputs_kwargs=conditions, **compute)
    vary.click(actions.vary, head + [strength, steps, seed, method, full_band], outputs, api_name="vary", **named)
    inpaint.click(
        actions.inpaint, head + [start, end, region, steps, seed, full_band], outputs, api_name="inpaint", **named
    )
    extend.click(actions.continue_, head + [seconds, steps, seed, full_band], outputs, api_name="continue", **named)
    invert.click(
        actions.edit_by_inversion,
        head + [source_label, inversion_strength, steps, seed, away, full_band],
        outputs,
        api_name="edit",
        **named,
    )
    model.change(
        lambda name: gr.update(**actions.inversion_source(name)), [model], source_label, api_visibility="private"
    )
