"""Fine-tuning: a diffusion run that starts from a pretrained model's weights (`train.init_from`).

The architecture, the MelSpec and the diffusion settings must be the source's, so the run adopts
them (and says so). Conditions are matched by name: a label set that differs keeps the rows of
the labels both know and starts the new ones from the source's null row (so an unknown label
begins as "no label"); a condition only the run has starts fresh; one only the source has is
dropped. Everything is reported, so a user sees what carried over.
"""

from __future__ import annotations

import dataclasses
import sys

import torch.nn as nn

from audiodiff.config import DiffusionRunConfig, to_dict
from audiodiff.errors import UserError
from audiodiff.models.conditioning import UNK
from audiodiff.spaces import space_class

__all__ = ["InitError", "adopt_source", "load_source_weights", "load_source"]

ADOPTED = ("model", "mel", "diffusion")  # sections the run takes from its source
CONDITIONS = "conditioner.conditions."


class InitError(UserError, ValueError):
    """A `train.init_from` that cannot carry over; the message names what differs and the fix."""


def load_source(name_or_path: str):
    """The pretrained model (no vocoder loaded) that `train.init_from` names."""
    from audiodiff.checkpoint import CheckpointError
    from audiodiff.models.diffusion import DiffusionModel

    try:
        return DiffusionModel.from_pretrained(name_or_path)
    except CheckpointError as error:
        raise InitError(f"train.init_from={name_or_path!r}: {error}") from None


def adopt_source(
    config: DiffusionRunConfig, source: DiffusionRunConfig, name: str, verbose: bool = True
) -> DiffusionRunConfig:
    """The run's config with the source's architecture, MelSpec and diffusion settings."""
    if space_class(source.data) is not space_class(config.data):
        raise InitError(
            f"train.init_from={name!r} is a {source.data.representation} model and this run trains on "
            f"{config.data.representation}; set data.representation={source.data.representation} or choose another source"
        )
    if source.data.sample_rate != config.data.sample_rate:
        raise InitError(
            f"train.init_from={name!r} works at {source.data.sample_rate} Hz and this run at {config.data.sample_rate} Hz; "
            f"set data.sample_rate={source.data.sample_rate} (files are resampled on loading)"
        )
    if source.data.channels != config.data.channels:
        raise InitError(
            f"train.init_from={name!r} has {source.data.channels} channel(s); set data.channels={source.data.channels}"
        )
    changed = [section for section in ADOPTED if to_dict(getattr(config, section)) != to_dict(getattr(source, section))]
    if changed and verbose:
        print(
            f"init_from {name}: using its {', '.join(changed)} settings (fine-tuning needs the same architecture)",
            file=sys.stderr,
        )
    return dataclasses.replace(config, **{section: getattr(source, section) for section in ADOPTED})


def load_source_weights(
    model: nn.Module,
    source: nn.Module,
    name: str,
    verbose: bool = True,
    setting: str | None = None,
    fix: str = "this is a bug: the run adopts the source's model section",
) -> list[str]:
    """Copy the source's weights into `model`, mapping conditions by name and label rows by label;
    returns the report lines (also printed). A different architecture is an `InitError` naming
    `setting` (default `train.init_from=NAME`) and `fix`."""
    own, theirs = model.state_dict(), source.state_dict()
    body = [k for k in own if not k.startswith(CONDITIONS)]
    mismatched = [k for k in body if k not in theirs or theirs[k].shape != own[k].shape]
    if mismatched:
        setting = setting or f"train.init_from={name!r}"
        raise InitError(f"{setting}: the architectures differ at {mismatched[:3]}; {fix}")
    merged = {k: theirs[k] for k in body}
    report = []
    own_conditions, their_conditions = model.conditioner.conditions, source.conditioner.conditions
    for key, condition in own_conditions.items():
        prefix = f"{CONDITIONS}{key}."
        if key not in their_conditions:
            report.append(f"{key}: new, starts from scratch")
            continue
        theirs_c = their_conditions[key]
        if key == "label":
            merged.update(_label_rows(condition, theirs_c, prefix, own, theirs, report))
            continue
        if key == "text" and _word_rows_fit(condition, theirs_c, prefix, own, theirs):
            merged.update(_word_rows(condition, theirs_c, prefix, own, theirs, report))
            continue
        state = {k: v for k, v in theirs.items() if k.startswith(prefix)}
        mine = {k for k in own if k.startswith(prefix)}
        if set(state) <= mine and all(own[k].shape == v.shape for k, v in state.items()):
            merged.update(state)  # layers the source lacks (a curve's motion) keep their initial weights
            added = sorted({k[len(prefix) :].split(".")[0] for k in mine - set(state)})
            report.append(
                f"{key}: carried over"
                + (f"; new layers ({', '.join(added)}) keep their initial weights" if added else "")
            )
        else:
            report.append(f"{key}: differs from the source's (vocabulary or range), starts from scratch")
    dropped = sorted(set(their_conditions) - set(own_conditions))
    if dropped:
        report.append(f"not used by this run: {', '.join(dropped)}")
    missing = [k for k in own if k not in merged]
    merged.update({k: own[k] for k in missing})
    model.load_state_dict(merged)
    if verbose:
        print(
            f"initialised from {name}: " + "; ".join(report or ["unconditional, all weights carried over"]),
            file=sys.stderr,
        )
    return report


def _word_rows_fit(condition, source_condition, prefix, own, theirs) -> bool:
    """Two built-in caption encoders that differ at most in their vocabulary."""
    if not (hasattr(condition.encoder, "index") and hasattr(source_condition.encoder, "index")):
        return False
    mine = {k: v for k, v in own.items() if k.startswith(prefix) and k != f"{prefix}encoder.embed.weight"}
    return set(mine) == {k for k in theirs if k.startswith(prefix) and k != f"{prefix}encoder.embed.weight"} and all(
        theirs[k].shape == v.shape for k, v in mine.items()
    )


def _word_rows(condition, source_condition, prefix, own, theirs, report) -> dict:
    """The caption encoder with a grown vocabulary: known words (and the special tokens) keep
    their rows, new words start from the unknown-word row."""
    name = f"{prefix}encoder.embed.weight"
    state = {k: v.clone() for k, v in theirs.items() if k.startswith(prefix) and k != name}
    source_rows, rows = theirs[name], own[name].clone()
    specials = min(condition.encoder.index.values(), default=rows.shape[0])
    rows[:specials] = source_rows[:specials]
    source_index, unknown = source_condition.encoder.index, source_rows[UNK]
    known = 0
    for word, index in condition.encoder.index.items():
        known += word in source_index
        rows[index] = source_rows[source_index[word]] if word in source_index else unknown
    state[name] = rows
    report.append(
        f"text: {known} of {len(condition.encoder.index)} words known to the source, the rest start as unknown words"
    )
    return state


def _label_rows(condition, source_condition, prefix, own, theirs, report) -> dict:
    """The label embedding: shared labels keep their rows, new labels start from the null row."""
    state = {k: v.clone() for k, v in theirs.items() if k.startswith(prefix) and k != f"{prefix}embed.weight"}
    source_rows = theirs[f"{prefix}embed.weight"]
    rows = own[f"{prefix}embed.weight"].clone()
    if rows.shape[1] != source_rows.shape[1]:
        report.append("label: the embedding width differs, starts from scratch")
        return {}
    null = source_rows[len(source_condition.labels)]
    shared = [label for label in condition.labels if label in source_condition.labels]
    for index, label in enumerate(condition.labels):
        rows[index] = source_rows[source_condition.labels.index(label)] if label in shared else null
    rows[len(condition.labels)] = null
    state[f"{prefix}embed.weight"] = rows
    new = len(condition.labels) - len(shared)
    report.append(
        f"label: {len(shared)} of {len(condition.labels)} labels known to the source"
        + (f", {new} new (start as no label)" if new else "")
    )
    return state
