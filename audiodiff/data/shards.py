"""Tar shards for datasets larger than one disk: written once, then streamed front to back.

Layout of a shard folder (`audiodiff data shard MANIFEST --out DIR --shard-size N`):

    index.json          format marker, the shards (name, item count, bytes) and one row per item
                        (shard, member, label, text, numbers, split, seconds, ...)
    shard-00000.tar     per item two members: KEY.wav|flac|... (the original file's bytes, not
    shard-00001.tar     re-encoded) and KEY.json (its manifest row)

The index lets training fill its label set, caption vocabulary and number ranges without opening
a shard. This module is the file format only; `audiodiff.data.dataset.ShardStream` streams it.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import torch
from tqdm.auto import tqdm

from audiodiff.checkpoint import write_atomic
from audiodiff.config import DataConfig
from audiodiff.data.items import AudioItem, DatasetError, ScanReport
from audiodiff.data.manifest import item_row, row_numbers

__all__ = ["INDEX", "is_shard_folder", "read_members", "read_shard_items", "write_shards"]

INDEX = "index.json"
FORMAT = "audiodiff-shards"
VERSION = 1


MAX_MEMBER_BYTES = 1 << 30  # one clip; a larger member is a corrupt or hostile shard


def is_shard_folder(path: Path) -> bool:
    """True if `path` holds an index.json written by `write_shards` (read from its first bytes)."""
    index = path / INDEX
    if not index.is_file():
        return False
    with index.open("rb") as handle:
        return FORMAT.encode() in handle.read(200)


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0  # fixed metadata: same input, same bytes
    tar.addfile(info, io.BytesIO(data))


def write_shards(
    items: list[AudioItem],
    out_dir: str | os.PathLike,
    shard_size: int,
    source: Path,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool | None = None,
) -> Path:
    """Write checked `items` (shuffled by `seed`, so each shard mixes the classes) as tar shards
    of `shard_size` items into `out_dir`; returns the index file."""
    if shard_size < 1:
        raise DatasetError(f"--shard-size {shard_size}: need at least 1 item per shard")
    out_dir = Path(out_dir)
    if (out_dir / INDEX).exists() and not overwrite:
        raise DatasetError(f"{out_dir} already holds shards; pass --overwrite or choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    shards, rows = [], []
    bar = tqdm(total=len(order), desc="sharding", unit="file", disable=None if progress is None else not progress)
    for number, start in enumerate(range(0, len(order), shard_size)):
        name = f"shard-{number:05d}.tar"
        chunk = order[start : start + shard_size]

        def write(temporary: Path) -> None:
            with tarfile.open(temporary, "w") as tar:
                for position in chunk:
                    item = items[position]
                    key = f"{len(rows):08d}"
                    member = key + item.path.suffix.lower()
                    row = item_row(item, source)
                    _tar_member(tar, member, item.path.read_bytes())
                    _tar_member(tar, f"{key}.json", json.dumps(row, ensure_ascii=False).encode())
                    rows.append({"shard": number, "member": member, **row})
                    bar.update(1)

        write_atomic(out_dir / name, write)
        shards.append({"name": name, "count": len(chunk), "bytes": (out_dir / name).stat().st_size})
    bar.close()
    index = {
        "format": FORMAT,
        "version": VERSION,
        "shard_size": shard_size,
        "seed": seed,
        "shards": shards,
        "items": rows,
    }
    return write_atomic(out_dir / INDEX, lambda temporary: temporary.write_text(json.dumps(index, ensure_ascii=False)))


def read_shard_items(path: Path, cfg: DataConfig, report: ScanReport) -> list[AudioItem]:
    """The items of a shard folder, from its index; items of a missing shard are skipped."""
    try:
        index = json.loads((path / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path / INDEX}: unreadable ({error}); write the shards again") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or index.get("version") != VERSION:
        raise DatasetError(f"{path / INDEX}: not a version-{VERSION} {FORMAT} index; write the shards again")
    try:
        names = [str(shard["name"]) for shard in index["shards"]]
        rows = list(index["items"])
    except (KeyError, TypeError) as error:
        raise DatasetError(f"{path / INDEX}: malformed index ({error!r}); write the shards again") from None
    bad = [name for name in names if "/" in name or "\\" in name or name.startswith(".") or "\0" in name]
    if bad:
        raise DatasetError(f"{path / INDEX}: shard names {bad[:3]} leave the shard folder; write the shards again")
    shards = [path / name for name in names]
    present = [shard.is_file() for shard in shards]
    items = []
    for position, row in enumerate(rows):
        try:
            number = row["shard"]
            if not isinstance(number, int) or not 0 <= number < len(shards):
                raise ValueError(f"shard {number!r} is not in the index")
            shard = shards[number]
            if not present[number]:
                report.skip("missing shard file", f"{shard}:{row['member']}")
                continue
            numbers = row_numbers({k: v for k, v in row.items() if k not in ("shard", "member")}, cfg.number_fields)
            item = AudioItem(
                shard,
                label=row.get("label"),
                text=row.get("text"),
                numbers=numbers,
                seconds=float(row.get("seconds", 0.0)),
                split=row.get("split"),
                sample_rate=int(row.get("sample_rate", 0)),
                channels=int(row.get("channels", 0)),
                member=str(row["member"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            report.skip("malformed shard index row", f"{path / INDEX}:items[{position}]")
            continue
        items.append(item)
    return items


def read_members(shard: Path, wanted: set[str]) -> dict[str, bytes]:
    """Read the `wanted` members of a tar in one front-to-back pass (works on pipes and streams)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(shard, mode="r|*") as tar:
            for member in tar:
                if member.name in wanted:
                    if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                        raise DatasetError(
                            f"{shard}: member {member.name} is not a file of at most {MAX_MEMBER_BYTES >> 20} MB"
                        )
                    found[member.name] = tar.extractfile(member).read()
                    if len(found) == len(wanted):
                        break
    except (OSError, tarfile.TarError) as error:
        raise DatasetError(
            f"{shard}: cannot read the shard ({error}); it changed or broke after it was written"
        ) from None
    missing = sorted(wanted - set(found))
    if missing:
        raise DatasetError(
            f"{shard}: members {missing[:3]} are in the index but not in the shard; write the shards again"
        )
    return found
