"""The page's conditions, built from the models' condition specs (`Pipeline.condition_specs`).

Gradio components are made once, so the page has one widget per condition name over every model
it serves, shown for the models that take that condition: a dropdown where the spec lists
choices, a slider where it gives a trained range, a text box otherwise (read as the CLI reads
`--cond NAME=VALUE`, through `ConditionSpec.parse_text`). A widget that can be left empty also
gets a negative twin (`negative_<name>`). Handlers take the widgets' values by name; validation
stays in `Condition.check`, and the page adds only the widget limits the spec gives.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr

from audiodiff.demo.store import NO_CHOICE, _check_at_most
from audiodiff.models.conditioning import ConditionSpec

OTHER_TABS = {"curve"}  # kinds that another tab offers (the Curves tab draws f0 and loudness)
NO_CHOICE_TEXT = "(none: unconditional)"
SLIDER_STEP = 0.01


@dataclasses.dataclass(frozen=True)
class Field:
    """One condition widget. `key` names it in the page's API (the condition's name, or
    `negative_<name>`); a slider spans every served model's range, since gradio holds every
    request to a slider's own bounds, whichever model it names."""

    key: str
    name: str
    widget: str  # dropdown | slider | textbox
    help: str
    low: float | None = None
    high: float | None = None
    unit: str = ""
    negative: bool = False

    @property
    def optional(self) -> bool:
        """Whether it can be left empty (a slider always holds a value)."""
        return self.widget != "slider"

    def label(self, spec: ConditionSpec | None = None) -> str:
        """What the widget is called on the page: with `spec`, that model's trained range."""
        if self.widget == "slider":
            low, high = (spec.low, spec.high) if spec else (self.low, self.high)
            return f"{self.name} (trained {low:g}..{high:g}{' ' + self.unit if self.unit else ''})"
        return f"negative {self.name}" if self.negative else self.name


def widget_for(spec: ConditionSpec) -> str:
    """How a condition is offered, from what its spec gives (never from its kind's name)."""
    if spec.choices:
        return "dropdown"
    if spec.low is not None and spec.high is not None:
        return "slider"
    return "textbox"


def condition_fields(specs: dict[str, list[ConditionSpec]]) -> dict[str, Field]:
    """The widgets for models `{model: specs}`, by key: one per condition name, in order of
    first appearance (a text box where the models disagree on the widget), then a negative
    widget for each that can be left empty."""
    fields: dict[str, Field] = {}
    for model_specs in specs.values():
        for spec in model_specs:
            if spec.kind in OTHER_TABS:
                continue
            field = Field(spec.name, spec.name, widget_for(spec), spec.help, spec.low, spec.high, spec.unit)
            seen = fields.setdefault(spec.name, field)
            if seen.widget != field.widget:
                fields[spec.name] = dataclasses.replace(seen, widget="textbox", low=None, high=None)
            elif field.widget == "slider":
                fields[spec.name] = dataclasses.replace(
                    seen, low=min(seen.low, field.low), high=max(seen.high, field.high)
                )
    negatives = {
        f"negative_{field.name}": dataclasses.replace(field, key=f"negative_{field.name}", negative=True)
        for field in fields.values()
        if field.optional
    }
    return fields | negatives


def field_settings(field: Field, spec: ConditionSpec | None, kept: Any = None) -> dict:
    """Component settings of `field` for a model whose spec of that name is `spec` (None: the
    model does not take it, and the widget is hidden and emptied). `kept`, the widget's value
    before, stays where this model's widget can hold it."""
    if spec is None:
        return dict(visible=False) if field.widget == "slider" else dict(value=NO_CHOICE, visible=False)
    if field.widget == "dropdown":
        start = NO_CHOICE if field.negative else spec.choices[0]
        return dict(
            choices=[(NO_CHOICE_TEXT, NO_CHOICE)] + [(choice, choice) for choice in spec.choices],
            value=kept if kept in spec.choices else start,
            visible=True,
        )
    if field.widget == "slider":
        middle = round((spec.low + spec.high) / 2, 2)
        inside = isinstance(kept, (int, float)) and spec.low <= kept <= spec.high
        return dict(
            label=field.label(spec), minimum=spec.low, maximum=spec.high, value=kept if inside else middle, visible=True
        )
    return dict(value=kept if isinstance(kept, str) else "", visible=True)


def component(field: Field, settings: dict, max_chars: int) -> gr.components.Component:
    """The gradio widget of `field`, in the state `settings` (from `field_settings`)."""
    info = "guide away from this" if field.negative else field.help
    if field.widget == "dropdown":
        return gr.Dropdown(label=field.label(), info=info, allow_custom_value=True, **settings)
    if field.widget == "slider":
        middle = round((field.low + field.high) / 2, 2)
        settings = dict(label=field.label(), value=middle) | settings | dict(minimum=field.low, maximum=field.high)
        return gr.Slider(step=SLIDER_STEP, info=info, **settings)
    return gr.Textbox(
        label=f"{field.label()} (up to {max_chars} characters)",
        info=info,
        max_length=max_chars,
        elem_id=f"condition-{field.key}",
        **settings,
    )


def read_conditions(
    fields: dict[str, Field], specs: list[ConditionSpec], values: dict[str, Any], max_chars: int
) -> tuple[dict, dict]:
    """The widgets' values (key -> value) as (conditions, negatives) for a model with `specs`.
    Empty widgets and the sliders of conditions the model does not take are left out; every
    other value goes to the model, whose `Condition.check` refuses what it cannot take."""
    by_name = {spec.name: spec for spec in specs}
    conditions: dict[str, Any] = {}
    negatives: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise gr.Error(f"{key}: this page offers no condition of that name; it offers {sorted(fields)}")
        field = fields[key]
        spec = by_name.get(field.name)
        if value is None or isinstance(value, str) and not value.strip() or spec is None and not field.optional:
            continue
        if isinstance(value, str):
            _check_at_most(f"{key} length", len(value), max_chars, " characters")
            value = spec.parse_text(value.strip()) if spec else value.strip()
        (negatives if field.negative else conditions)[field.name] = value
    return conditions, negatives


def full_band_box() -> gr.Checkbox:
    """The "full band" option of the Generate and Edit tabs: the result through the upsampler."""
    return gr.Checkbox(
        value=False,
        label="full band (44.1 kHz upsampler)",
        info="extend the result to 44.1 kHz with the bundled upsampler; for 16 kHz models",
        scale=2,
    )
