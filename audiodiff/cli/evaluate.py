"""`audiodiff eval`: scores of generated audio against real audio, and its classifier."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from audiodiff.cli.generate import _adapter_scales, _add_device_arg, _check_device
from audiodiff.cli.registry import command


def _eval_args(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The scores need a classifier trained on labelled real clips of the same sounds (--classifier; "
        "`audiodiff eval train-classifier --help`): accuracy, IS/mIS/AM and the default Fréchet embedding "
        "come from it. Without one, only the 'crepe' Fréchet embedding (pip install torchcrepe) and, for "
        "clips that pair by name, the signal distances can be computed."
    )
    sub = parser.add_subparsers(dest="eval_command", metavar="train-classifier")
    for name, (add, _, help_text) in EVAL_COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--generated",
        help="folder of generated clips (labels from subfolders: DIR/LABEL/x.wav)",
    )
    source.add_argument(
        "--checkpoint",
        help="sample from this checkpoint (or run directory) into OUT/generated/LABEL/",
    )
    parser.add_argument("--per-label", type=int, default=32, help="with --checkpoint: clips per label")
    parser.add_argument(
        "--labels",
        help="with --checkpoint: comma-separated labels (default: all the model's)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        help="with --checkpoint: sampling steps (default: the model's)",
    )
    from audiodiff.diffusion.samplers import SAMPLERS

    parser.add_argument(
        "--sampler",
        choices=sorted(SAMPLERS),
        help="with --checkpoint: sampler (default: the model's)",
    )
    parser.add_argument(
        "--guidance",
        type=float,
        help="with --checkpoint: guidance scale (default: the model's)",
    )
    parser.add_argument(
        "--vocoder",
        help="with --checkpoint: vocoder directory or griffin_lim (default: the model's)",
    )
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="PATH[:SCALE]",
        help="with --checkpoint: an adapter run on it, at SCALE (repeatable)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="with --checkpoint: clips per generate call",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="with --checkpoint: replace clips in OUT/generated",
    )
    parser.add_argument(
        "--reference",
        help="real clips: a folder (DIR/LABEL/x.wav) or a dataset manifest / folder with one",
    )
    parser.add_argument(
        "--split",
        help="split of --reference (default: test where there is one; '' for all)",
    )
    parser.add_argument(
        "--training-split",
        help="memorisation: the model's training clips, this split of --reference (default: train where "
        "there is one; '' to skip); each generated clip's nearest one against the held-out clips' own, with a listening page",
    )
    parser.add_argument(
        "--likelihood",
        type=int,
        default=0,
        metavar="N",
        help="with --checkpoint: negative log-likelihood (bits/dim, probability-flow ODE) of N reference clips, "
        "beside the same clips with their frames shuffled and Gaussian noise",
    )
    parser.add_argument(
        "--likelihood-steps",
        type=int,
        default=12,
        help="Runge-Kutta steps of the likelihood ODE",
    )
    _add_device_arg(parser)
    parser.add_argument(
        "--training-reference",
        help="memorisation: the model's training clips from another folder or manifest",
    )
    parser.add_argument(
        "--training-clips",
        type=int,
        default=2000,
        help="memorisation: at most this many training clips (evenly drawn)",
    )
    parser.add_argument(
        "--classifier",
        help="classifier directory (from `audiodiff eval train-classifier`); needed for accuracy, IS and the default Fréchet embedding",
    )
    parser.add_argument(
        "--embedding",
        action="append",
        help="Fréchet embedding, repeatable: classifier, crepe (default: classifier if given)",
    )
    floor = parser.add_mutually_exclusive_group()
    floor.add_argument(
        "--floor-reference",
        help="real clips standing in for the generated ones (the floor)",
    )
    floor.add_argument(
        "--floor-split",
        help="split of --reference to draw the floor from (default: train where there is one)",
    )
    floor.add_argument("--no-floor", action="store_true", help="skip the real-vs-real floor")
    parser.add_argument("--out", help="output folder: metrics.json, report.md, PNGs")


@command("eval", "score generated audio against real audio, beside the real-vs-real floor")(_eval_args)
def run_eval(args: argparse.Namespace) -> int:
    if args.eval_command:
        return EVAL_COMMANDS[args.eval_command][1](args)
    return _run_evaluation(args)


def _run_evaluation(args: argparse.Namespace) -> int:
    from audiodiff.metrics.evaluation import RealSources, evaluate
    from audiodiff.metrics.report import summary_lines
    from audiodiff.metrics.scoring import likelihood_report, load_classifier
    from audiodiff.metrics.sets import EvaluationError, check_labels, load_clips, sample_checkpoint

    missing = [
        flag
        for flag, value in (
            ("--generated or --checkpoint", args.generated or args.checkpoint),
            ("--reference", args.reference),
            ("--out", args.out),
        )
        if not value
    ]
    if missing:
        raise EvaluationError(f"audiodiff eval needs {', '.join(missing)} (see audiodiff eval --help)")
    if args.likelihood and not args.checkpoint:
        raise EvaluationError(
            "--likelihood needs the model: pass --checkpoint (a bundled name, checkpoint or run directory)"
        )
    _check_device(args.device)
    classifier = load_classifier(args.classifier)
    sources = RealSources.resolve(
        args.reference,
        args.split,
        args.floor_reference,
        args.floor_split,
        args.no_floor,
        args.training_reference,
        args.training_split,
        args.training_clips,
    )
    reference = sources.load_reference(classifier)
    info: dict = {"arguments": {key: value for key, value in vars(args).items() if key != "run"}}
    if args.checkpoint:
        labels = [label.strip() for label in args.labels.split(",")] if args.labels else None
        generated, info["sampling"] = sample_checkpoint(
            args.checkpoint,
            Path(args.out) / "generated",
            args.per_label,
            labels,
            args.steps,
            args.sampler,
            args.guidance,
            args.seed,
            args.batch_size,
            args.vocoder,
            args.overwrite,
            classifier,
            device=args.device,
            adapters=_adapter_scales(args.adapter),
        )
    else:
        generated = load_clips(args.generated, side="generated")
    check_labels(generated.labels, classifier, f"generated {generated.description}")
    floor = sources.load_floor(generated, args.seed)
    training = sources.load_training(classifier)
    if args.likelihood:
        info["likelihood"] = likelihood_report(
            args.checkpoint,
            reference,
            args.likelihood,
            args.likelihood_steps,
            args.seed,
            args.device,
        )
    result = evaluate(
        generated,
        reference,
        args.out,
        classifier,
        floor,
        args.embedding,
        info,
        progress=True,
        training=training,
    )
    print("\n".join(summary_lines(result, args.out)))
    return 0


def _train_classifier_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        required=True,
        help="labelled clips: a dataset manifest / folder with one, or DIR/LABEL/x.wav",
    )
    parser.add_argument("--split", help="training split (default: train where there is one; '' for all)")
    parser.add_argument(
        "--valid-split",
        help="accuracy reported on this split (default: valid where there is one)",
    )
    parser.add_argument("--test-split", help="and on this one (default: test where there is one)")
    parser.add_argument(
        "--out",
        required=True,
        help="classifier directory (config.json + model.safetensors)",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--clip-seconds",
        type=float,
        default=1.0,
        help="clips are cropped or zero-padded to this",
    )
    parser.add_argument("--seed", type=int, default=0)


def _run_train_classifier(args: argparse.Namespace) -> int:
    from audiodiff.metrics.evaluation import train_evaluation_classifier

    summary = train_evaluation_classifier(
        args.data,
        args.out,
        args.split,
        args.valid_split,
        args.test_split,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        clip_seconds=args.clip_seconds,
        seed=args.seed,
    )
    training = summary["training"]
    print(
        f"trained on {training['num_items']} clips in {training['seconds']:.0f} s "
        f"(final train accuracy {training['final_train_accuracy']:.3f})"
    )
    for split, scores in training["evaluation"].items():
        worst = min((v, k) for k, v in scores["per_class_accuracy"].items() if v is not None)
        print(
            f"{split} accuracy {scores['accuracy']:.4f} on {scores['num_items']} clips (lowest: {worst[1]} {worst[0]:.3f})"
        )
    print(f"saved {summary['path']}")
    return 0


EVAL_COMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "train-classifier": (
        _train_classifier_args,
        _run_train_classifier,
        "train the evaluation classifier on labelled real clips",
    ),
}
