"""The reliability table of `docs/reliability.md`, from what the reliability tests saw. Only the
text between the `<!-- reliability:start -->` and `<!-- reliability:end -->` markers changes.

AUDIODIFF_RELIABILITY_LOG=reliability.jsonl python -m pytest tests/reliability
python scripts/reliability_table.py reliability.jsonl [--out docs/reliability.md] [--print]
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"
ROOT = Path(__file__).resolve().parents[1]


def rows(records: list[dict]) -> list[tuple[str, int, str]]:
    out = []
    by_test = collections.defaultdict(list)
    for record in records:
        by_test[record["test"]].append(record)
    for record in by_test.pop("killed_training", []):
        trials = [t for t in record["trials"] if t["kind"] != "finish"]
        kinds = collections.Counter(t["kind"] for t in trials)
        out.append(
            (
                "SIGKILL of a 1-process training run (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")",
                len(trials),
                "each `--resume` continued from the newest complete checkpoint; the finished run's weights, optimizer, "
                "RNG and log were bit-identical to an uninterrupted run",
            )
        )
    for record in by_test.pop("torchrun_killed_training", []):
        out.append(
            (
                "torchrun, 2 CPU processes: whole launch SIGKILLed during a checkpoint write, then one rank SIGKILLed",
                2,
                f"no half-written checkpoint visible; the surviving rank exited in {record['death']['seconds']} s "
                "(torchrun start-up included) naming the dead rank; the resumed run matched an uninterrupted one bit for bit",
            )
        )
    failed = by_test.pop("failed_write", [])
    if failed:
        out.append(
            (
                "failed writes: " + "; ".join(r["fault"] for r in failed),
                len(failed),
                "stopped with a message naming the file and the OS error; the previous checkpoint intact; after the fault, "
                "`--resume` reached the uninterrupted run's weights",
            )
        )
    numeric = by_test.pop("numerical_fault", [])
    if numeric:
        skipped = sum(r.get("skipped", 0) for r in numeric)
        out.append(
            (
                "numerical faults: " + "; ".join(r["injected"] for r in numeric),
                len(numeric),
                f"{skipped} injected non-finite steps skipped and counted (train.nan_policy=skip) or the run stopped with a "
                "message (stop, or too many in a row); no NaN in any saved checkpoint",
            )
        )
    hostile = by_test.pop("hostile_checkpoint", [])
    if hostile:
        ran = sum(bool(r.get("code_ran")) for r in hostile)
        out.append(
            (
                "hostile checkpoints: " + "; ".join(sorted({r["case"] for r in hostile})),
                len(hostile),
                f"all refused with a message naming the file; pickled payloads executed: {ran}",
            )
        )
    for record in by_test.pop("fuzz", []):
        outcomes = {k: v for k, v in record.items() if k not in ("test", "case", "trials")}
        out.append(
            (
                f"fuzz: {record['case']}",
                record["trials"],
                ", ".join(f"{k}: {v}" for k, v in outcomes.items())
                + "; no crash, hang or read outside the dataset folder",
            )
        )
    demo = by_test.pop("demo_abuse", [])
    for record in demo:
        facts = {k: v for k, v in record.items() if k not in ("test", "case", "trials")}
        out.append((f"demo: {record['case']}", record["trials"], ", ".join(f"{k}: {v}" for k, v in facts.items())))
    for test, records in by_test.items():
        out.append((test, len(records), "see the log"))
    return out


def table(records: list[dict]) -> str:
    lines = ["| fault or hostile input | trials | what happened |", "|---|---:|---|"]
    lines += [f"| {what} | {trials} | {result} |" for what, trials, result in rows(records)]
    return "\n".join(lines) + "\n"


def update_page(text: str, section: str) -> str:
    """`text` with everything between the reliability markers replaced by `section`."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"markers {START} ... {END} not found (in that order); add them where the table goes")
    return text[: start + len(START)] + "\n" + section + text[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="the JSONL that AUDIODIFF_RELIABILITY_LOG named")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md", help="the page with the markers")
    parser.add_argument("--print", action="store_true", help="print the table instead of writing the page")
    args = parser.parse_args()
    records = [json.loads(line) for line in args.log.read_text().splitlines() if line.strip()]
    section = table(records)
    if args.print:
        print(section, end="")
        return
    try:
        args.out.write_text(update_page(args.out.read_text(), section))
    except ValueError as error:
        raise SystemExit(f"{args.out}: {error}") from None
    print(f"updated {args.out} ({len(records)} records, {len(section.splitlines()) - 2} rows)")


if __name__ == "__main__":
    main()
