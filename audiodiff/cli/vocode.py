"""`audiodiff vocode` and `export`: vocoders from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiodiff.cli.generate import _add_device_arg, _check_device, _save
from audiodiff.cli.registry import command


def _vocode_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vocoder",
        required=True,
        help="a vocoder checkpoint directory, a bundled name, or griffin_lim",
    )
    parser.add_argument(
        "--mel-from",
        help="with griffin_lim: a checkpoint whose MelSpec to use (default: 16 kHz, 80 mels)",
    )
    parser.add_argument("input", help="audio file (resampled to the vocoder's rate)")
    parser.add_argument("output", help="output .wav")
    parser.add_argument(
        "--plot",
        action="store_true",
        help="also write a spectrogram PNG (input vs output)",
    )
    _add_device_arg(parser)


@command(
    "vocode",
    "mel round trip: analyse a file to a mel and resynthesise it with a vocoder",
)(_vocode_args)
def run_vocode(args: argparse.Namespace) -> int:
    import time

    from audiodiff.audio import MelSpec, load_audio
    from audiodiff.vocoder import Vocoder

    mel_spec = None
    if args.vocoder == "griffin_lim":
        mel_spec = MelSpec()
        if args.mel_from:
            from audiodiff.pipeline import Pipeline

            mel_spec = Pipeline.from_pretrained(args.mel_from).mel_spec or mel_spec
    _check_device(args.device)
    vocoder = Vocoder.from_pretrained(args.vocoder, mel_spec).to(args.device)
    rate = vocoder.mel_spec.sample_rate
    audio, _ = load_audio(args.input, sample_rate=rate, channels=1)
    started = time.perf_counter()
    out = vocoder.round_trip(audio.to(args.device))[0].cpu()
    seconds = time.perf_counter() - started
    _save(Path(args.output), out, rate)
    if args.plot:
        from audiodiff.plots import plot_spectrograms

        plot_spectrograms(
            [audio, out],
            rate,
            Path(args.output).with_suffix(".png"),
            ["input", f"{vocoder.kind} vocoder"],
            columns=2,
        )
    duration = out.shape[-1] / rate
    print(
        f"{args.output}: {duration:.2f} s vocoded in {seconds:.3f} s ({duration / max(seconds, 1e-9):.0f}x real time)"
    )
    return 0


def _export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vocoder",
        required=True,
        help="a GAN vocoder checkpoint directory or bundled name",
    )
    parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    parser.add_argument("--out", required=True, help="output file (.onnx or .pt)")


@command("export", "export a GAN vocoder to ONNX or TorchScript for deployment")(_export_args)
def run_export(args: argparse.Namespace) -> int:
    from audiodiff.bundled import bundled_vocoders
    from audiodiff.vocoder import Vocoder, VocoderError
    from audiodiff.vocoder.export import export_vocoder

    if args.vocoder == "griffin_lim":
        raise VocoderError(
            f"--vocoder griffin_lim has no weights to export; pass a GAN vocoder directory or one of {bundled_vocoders()}"
        )
    path, report = export_vocoder(Vocoder.from_pretrained(args.vocoder), args.out, args.format)
    print(f"{path}: {report}")
    return 0
