"""The page's layout: components and events, wired to `DemoActions`."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

import gradio as gr

from audiodiff.demo.actions import DemoActions
from audiodiff.demo.edit_page import edit_tab
from audiodiff.demo.form import component, full_band_box
from audiodiff.demo.kit import MIX_AT
from audiodiff.demo.store import (
    GRIFFIN_LIM_ITERS,
    MAX_GUIDANCE,
    MAX_SEED,
    NO_CURVE,
    NO_MODEL_HELP,
    OUTPUT_MAX_AGE_S,
    Limits,
    ModelStore,
    discover_adapters,
    discover_models,
)
from audiodiff.diffusion.samplers import SAMPLERS


def build_app(
    model_paths: Sequence[str | os.PathLike] = (),
    limits: Limits | None = None,
    device: str = "cpu",
    store: ModelStore | None = None,
    adapters: dict[str, float] | None = None,
) -> gr.Blocks:
    """The page for the bundled models, `model_paths` (checkpoint or run directories) and
    `adapters` (adapter runs {path: scale}, each served on its base as one more model), with a
    queue that runs at most `limits.concurrency` model requests at once."""
    limits = limits or Limits()
    if store is None:
        extra, attached = discover_adapters(adapters or {})
        store = ModelStore(discover_models(model_paths) | extra, device, adapters=attached)
    with gr.Blocks(
        title="audiodiff", analytics_enabled=False, delete_cache=(OUTPUT_MAX_AGE_S, OUTPUT_MAX_AGE_S)
    ) as app:
        gr.Markdown(
            "# audiodiff\nGenerate and edit audio with a diffusion model; make drum kits; compare vocoders; "
            "read about the model."
        )
        if store.default_name() is None:
            gr.Markdown(NO_MODEL_HELP, elem_id="no-model")
        else:
            _build_page(DemoActions(store, limits), store.default_name())
    app.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    app.audiodiff_store = store
    return app


def _build_page(actions: DemoActions, default: str) -> None:
    """Components and events of the page for a store with at least one model. The condition
    widgets come from the models' specs (`DemoActions.fields`) and reach every handler by name."""
    limits, store = actions.limits, actions.store
    initial = actions.form(default)
    rows = actions.example_rows()
    compute = dict(concurrency_limit=limits.concurrency, concurrency_id="model")
    with gr.Row():
        model = gr.Dropdown(choices=store.names, value=default, label="model", scale=1)
        model_note = gr.Markdown(**initial["model_note"])
    fields = actions.fields
    with gr.Accordion("conditions (used by Generate, Edit, Curves and Drums)", open=True):
        with gr.Row():
            conditions = {
                key: component(field, initial[key], limits.max_text_chars)
                for key, field in fields.items()
                if not field.negative
            }
        with gr.Accordion("negative conditions (guide away from these)", open=False), gr.Row():
            conditions |= {
                key: component(field, initial[key], limits.max_text_chars)
                for key, field in fields.items()
                if field.negative
            }
    with gr.Tabs():
        with gr.Tab("Generate"):
            generate = _generate_tab(actions, initial, rows)
        with gr.Tab("Edit"):
            edit_tab(actions, model, conditions, compute, actions.inversion_source(default))
        with gr.Tab("Curves"):
            _curves_tab(actions, model, conditions, compute)
        with gr.Tab("Drums"):
            _drums_tab(actions, model, conditions, compute, actions.drums_form(default))
        with gr.Tab("Vocoder"):
            _vocoder_tab(actions, model, compute)
        with gr.Tab("About the model"):
            about = gr.Markdown(**initial["about"])
            config = gr.JSON(label="config.json", **initial["config"])
    duration, sampler, steps, guidance, seed, batch, full_band, button, examples, outputs = generate
    button.click(
        actions.generate,
        [model, duration, sampler, steps, guidance, seed, batch, full_band],
        outputs,
        inputs_kwargs=conditions,
        api_name="generate",
        **compute,
    )
    others = dict(
        duration=duration,
        sampler=sampler,
        steps=steps,
        guidance=guidance,
        model_note=model_note,
        about=about,
        config=config,
    )
    form = [conditions[key] if key in conditions else others[key] for key in initial]  # the order of `DemoActions.form`
    model.change(actions.form_updates, [model], form, inputs_kwargs=conditions, api_visibility="private")
    examples.click(lambda index: actions.example(index, rows), examples, [model, seed, *form], api_visibility="private")


def _generate_tab(actions: DemoActions, initial: dict, rows: list[list]) -> tuple:
    limits = actions.limits
    with gr.Row():
        duration = gr.Slider(
            0.1,
            limits.max_seconds,
            step=0.05,
            label=f"duration (s, at most {limits.max_seconds:g})",
            **initial["duration"],
        )
        batch = gr.Slider(1, limits.max_batch, value=1, step=1, label=f"batch size (at most {limits.max_batch})")
    with gr.Row():
        sampler = gr.Dropdown(sorted(SAMPLERS), label="sampler", **initial["sampler"])
        steps = gr.Slider(1, limits.max_steps, step=1, label=f"steps (at most {limits.max_steps})", **initial["steps"])
        guidance = gr.Slider(0.0, MAX_GUIDANCE, step=0.1, label="guidance (1 = none)", **initial["guidance"])
    with gr.Row(equal_height=True):
        seed = gr.Number(
            value=0, precision=0, minimum=0, maximum=MAX_SEED, label="seed (clip i uses seed + i)", scale=3
        )
        dice = gr.Button("random seed", size="sm", scale=1)
        full_band = full_band_box()
    button = gr.Button("Generate", variant="primary", elem_id="generate")
    examples = gr.Dataset(
        components=["textbox", "textbox", "textbox", "number"],
        headers=["model", "label", "prompt", "seed"],
        samples=rows,
        type="index",
        label="examples (click one to fill the form)",
    )
    audios, images = [], []
    for slot in range(limits.max_batch):
        with gr.Row(equal_height=True):
            audios.append(
                gr.Audio(
                    label=f"clip {slot + 1}",
                    type="filepath",
                    interactive=False,
                    visible=slot == 0,
                    buttons=["download"],
                    elem_classes=["result-audio"],
                )
            )
            images.append(
                gr.Image(
                    label=f"spectrogram {slot + 1}",
                    type="filepath",
                    interactive=False,
                    visible=slot == 0,
                    height=220,
                    elem_classes=["result-spectrogram"],
                )
            )
    files = gr.File(label="download (wav)", file_count="multiple", interactive=False)
    status = gr.Markdown(label="status")
    dice.click(lambda: random.randint(0, MAX_SEED), None, seed, queue=False, api_visibility="private")
    return (
        duration,
        sampler,
        steps,
        guidance,
        seed,
        batch,
        full_band,
        button,
        examples,
        audios + images + [files, status],
    )


def _curves_tab(actions: DemoActions, model: gr.Dropdown, conditions: dict, compute: dict) -> None:
    from audiodiff.controls import SHAPES

    limits = actions.limits
    gr.Markdown(
        "Generate along a pitch contour (f0) and a loudness envelope: take both from a recording (hum or sing a "
        "phrase), or pick shapes. For models trained with control curves (e.g. notes); the label and other "
        "conditions above still apply, and a given F0 replaces the pitch number."
    )
    with gr.Row():
        source = gr.Audio(
            sources=["upload", "microphone"],
            type="filepath",
            label=f"take the curves from (upload or record; up to {limits.max_upload_seconds:g} s; the first window is used)",
        )
        transpose = gr.Slider(-24, 24, value=0, step=1, label="transpose the recording's F0 (semitones)")
    with gr.Row():
        f0_shape = gr.Dropdown(
            [NO_CURVE] + sorted(SHAPES["f0"]), value="glide", label="or an f0 shape (without a recording)"
        )
        f0_pitch = gr.Slider(24, 96, value=60, step=1, label="around MIDI pitch")
        loudness_shape = gr.Dropdown(
            [NO_CURVE] + sorted(SHAPES["loudness"]), value="crescendo", label="and a loudness shape"
        )
        loudness_level = gr.Slider(-50, -6, value=-20, step=1, label="around level (dBFS)")
    with gr.Row():
        steps = gr.Slider(
            1, limits.max_steps, value=min(20, limits.max_steps), step=1, label=f"steps (at most {limits.max_steps})"
        )
        guidance = gr.Slider(0.0, MAX_GUIDANCE, value=2.0, step=0.1, label="guidance (1 = none)")
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="seed")
    button = gr.Button("Generate along the curves", variant="primary")
    with gr.Row():
        result = gr.Audio(label="result", type="filepath", interactive=False, buttons=["download"])
        picture = gr.Image(
            label="asked curves (white, black) over the result; measured (cyan)", type="filepath", interactive=False
        )
    status = gr.Markdown(label="status")
    button.click(
        actions.curves,
        [model, source, transpose, f0_shape, f0_pitch, loudness_shape, loudness_level, steps, guidance, seed],
        [result, picture, status],
        inputs_kwargs=conditions,
        api_name="curves",
        **compute,
    )


def _drums_tab(actions: DemoActions, model: gr.Dropdown, conditions: dict, compute: dict, initial: dict) -> None:
    """A kit grid (a pad per label, each with a regenerate button), variations of an uploaded
    hit and class mixing, for a model with labels; the conditions above (but the label) apply."""
    limits = actions.limits
    note = gr.Markdown(elem_id="drums-note", **initial["drums_note"])
    with gr.Column(**initial["drums_controls"]) as controls:
        pads = gr.Dropdown(
            label=f"pads (one clip per label, at most {limits.max_pads})",
            multiselect=True,
            allow_custom_value=True,
            max_choices=limits.max_pads,
            **initial["pads"],
        )
        with gr.Row(equal_height=True):
            steps = gr.Slider(
                1,
                limits.max_steps,
                value=min(20, limits.max_steps),
                step=1,
                label=f"steps (at most {limits.max_steps})",
            )
            guidance = gr.Slider(0.0, MAX_GUIDANCE, value=2.0, step=0.1, label="guidance (1 = none)")
            seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="seed (clip i uses seed + i)")
            dice = gr.Button("random seed", size="sm", scale=0, min_width=120)
        with gr.Tabs():
            with gr.Tab("Kit"):
                make = gr.Button("Generate kit", variant="primary", elem_id="generate-kit")
                kit_grid, regenerates = _hit_grid(limits.max_pads, "drum-pad", regenerate=True)
                kit_files = gr.File(label="download the kit (24-bit wav)", file_count="multiple", interactive=False)
                kit_status = gr.Markdown(label="status", elem_id="kit-status")
            with gr.Tab("Variations from an upload"):
                source = gr.Audio(
                    sources=["upload", "microphone"],
                    type="filepath",
                    label=f"a hit (upload or record; up to {limits.max_upload_seconds:g} s)",
                )
                with gr.Row():
                    hit_label = gr.Dropdown(label="the hit is a", allow_custom_value=True, **initial["hit_label"])
                    strength = gr.Slider(
                        0.0, 1.0, value=0.5, step=0.05, label="strength (0 keeps the hit, 1 ignores it)"
                    )
                    vary_count = gr.Slider(
                        1,
                        limits.max_batch,
                        value=limits.max_batch,
                        step=1,
                        label=f"variations (at most {limits.max_batch})",
                    )
                vary = gr.Button("Make variations", variant="primary")
                vary_grid, _ = _hit_grid(limits.max_batch, "drum-variation")
                vary_files = gr.File(label="download (24-bit wav)", file_count="multiple", interactive=False)
                vary_status = gr.Markdown(label="status")
            with gr.Tab("Mix two labels"):
                with gr.Row():
                    first = gr.Dropdown(label="body from", allow_custom_value=True, **initial["mix_first"])
                    second = gr.Dropdown(label="surface from", allow_custom_value=True, **initial["mix_second"])
                    at = gr.Slider(
                        0.0, 1.0, value=MIX_AT, step=0.05, label="switch at noise level (0: all body, 1: all surface)"
                    )
                    mix_count = gr.Slider(
                        1, limits.max_batch, value=1, step=1, label=f"clips (at most {limits.max_batch})"
                    )
                mix = gr.Button("Mix", variant="primary")
                mix_grid, _ = _hit_grid(limits.max_batch, "drum-mix")
                mix_files = gr.File(label="download (24-bit wav)", file_count="multiple", interactive=False)
                mix_status = gr.Markdown(label="status")
    kit = gr.State(None)
    named = dict(inputs_kwargs=conditions, **compute)
    kit_outputs = kit_grid + [kit, kit_files, kit_status]
    make.click(actions.drum_kit, [model, pads, steps, guidance, seed], kit_outputs, api_name="kit", **named)
    for slot, (pad, button) in enumerate(regenerates):
        name = dict(api_name="regenerate_pad") if slot == 0 else dict(api_visibility="private")  # one endpoint, `pad=`
        button.click(actions.regenerate_pad, [pad, model, steps, guidance, kit], kit_outputs, **name, **named)
    vary.click(
        actions.vary_hit,
        [model, source, hit_label, strength, vary_count, steps, guidance, seed],
        vary_grid + [vary_files, vary_status],
        api_name="vary_hit",
        **named,
    )
    mix.click(
        actions.mix_labels,
        [model, first, second, at, mix_count, steps, guidance, seed],
        mix_grid + [mix_files, mix_status],
        api_name="mix",
        **named,
    )
    dice.click(lambda: random.randint(0, MAX_SEED), None, seed, queue=False, api_visibility="private")
    components = dict(
        drums_note=note, drums_controls=controls, pads=pads, hit_label=hit_label, mix_first=first, mix_second=second
    )
    form = [components[key] for key in initial]  # the order of `DemoActions.drums_form`
    model.change(actions.drums_form_updates, [model], form, api_visibility="private")


def _hit_grid(slots: int, name: str, regenerate: bool = False, per_row: int = 4) -> tuple[list, list]:
    """`slots` clip slots, `per_row` to a row, hidden until they hold a clip: their columns,
    audios and pictures (the order of `DrumActions._grid`), and with `regenerate` each slot's
    (pad number, regenerate button)."""
    columns, audios, pictures, buttons = [], [], [], []
    for start in range(0, slots, per_row):
        with gr.Row(equal_height=True):
            for slot in range(start, min(start + per_row, slots)):
                with gr.Column(visible=False, min_width=220, elem_classes=[name]) as column:
                    audios.append(
                        gr.Audio(
                            label=f"clip {slot + 1}",
                            type="filepath",
                            interactive=False,
                            buttons=["download"],
                            elem_classes=[f"{name}-audio"],
                        )
                    )
                    pictures.append(
                        gr.Image(
                            label=f"clip {slot + 1}: waveform and spectrogram",
                            type="filepath",
                            interactive=False,
                            show_label=False,
                            height=200,
                            elem_classes=[f"{name}-picture"],
                        )
                    )
                    if regenerate:
                        number = gr.Number(value=slot + 1, precision=0, visible=False, label="pad (1 = the first)")
                        buttons.append(
                            (number, gr.Button("regenerate", size="sm", elem_classes=[f"{name}-regenerate"]))
                        )
                columns.append(column)
    return columns + audios + pictures, buttons


def _vocoder_tab(actions: DemoActions, model: gr.Dropdown, compute: dict) -> None:
    gr.Markdown(
        "The mel round trip: audio -> the model's log-mel -> audio, through the model's vocoder and through "
        f"Griffin-Lim ({GRIFFIN_LIM_ITERS} iterations), side by side. Mel models only; audio is resampled to the model's rate."
    )
    source = gr.Audio(
        sources=["upload", "microphone"],
        type="filepath",
        label=f"audio (upload or record; up to {actions.limits.max_upload_seconds:g} s)",
    )
    button = gr.Button("Round trip", variant="primary")
    outputs = []
    with gr.Row():
        for title in ("input (at the model's rate)", "the model's vocoder", "Griffin-Lim"):
            with gr.Column(min_width=220):
                outputs.append(gr.Audio(label=title, type="filepath", interactive=False, buttons=["download"]))
                outputs.append(gr.Image(label=f"{title}: spectrogram", type="filepath", interactive=False))
    timings = gr.Markdown(label="timings")
    button.click(actions.vocode, [model, source], outputs + [timings], api_name="vocode", **compute)


def launch(
    model_paths: Sequence[str | os.PathLike] = (),
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    limits: Limits | None = None,
    device: str = "cpu",
    prevent_thread_lock: bool = False,
    quiet: bool = False,
    adapters: dict[str, float] | None = None,
) -> gr.Blocks:
    """Serve the page on `host:port` (127.0.0.1 unless told otherwise; port None picks a free
    one from 7860). With `prevent_thread_lock` it returns at once, serving from a thread."""
    limits = limits or Limits()
    app = build_app(model_paths, limits, device, adapters=adapters)
    # gradio's own start-up lines suggest `share=True` in `launch()`; ours name the command's flag
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=limits.max_upload_bytes,
        ssr_mode=False,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,
    )
    if not quiet:
        print(f"* Running on local URL:  {app.local_url}", flush=True)
        if not share:
            print("* For a public link as well, run `audiodiff demo --share`", flush=True)
    if not prevent_thread_lock:
        app.block_thread()
    return app
