"""Results of a `mofrr eval` run broken down by FairFace group (race, gender or age; not a test).

Usage: python benchmarks/by_group.py REPORT_DIR [--by race|gender|age] [--method MoFRR] [--data DIR]

Reads ``REPORT_DIR/per_image.json`` (written by ``mofrr eval --data <shards>``) and the FairFace
metadata of the same faces from the shards (``--data``, default ``$MOFRR_DATA`` or
``../shared/data/faces``). Per group: faces, input PSNR, the method's PSNR gain and identity
cosine (restored vs retouched, when the run measured identity), and for each router gate its
recall on faces carrying the type and its false-positive rate on faces that do not, with the
method's PSNR gain summed over those false positives (the whole method's, other experts included).
A router that reads skin tone as whitening shows here as a false-positive rate that differs
between groups. docs/results.md quotes its output.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean

from mofrr_core.data.shards import face_metadata


def group_of(meta: dict, by: str) -> str:
    return str(meta.get(by, "unknown"))


def gate_row(entries: list[dict], method: str, gate: str) -> str:
    """``recall | false-positive rate (n) gain on them`` of one gate over one group's entries."""
    own = [e for e in entries if e["labels"].get(gate)]
    other = [e for e in entries if not e["labels"].get(gate)]
    called = [e for e in other if e["methods"][method]["probabilities"].get(gate, 0.0) >= 0.5]
    recall = mean(e["methods"][method]["probabilities"].get(gate, 0.0) >= 0.5 for e in own) if own else float("nan")
    fp_gain = sum(e["methods"][method]["psnr_gain"] for e in called)
    return f"{recall:.2f} / {len(called) / max(len(other), 1):.2f} ({fp_gain:+.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="a `mofrr eval --out` folder holding per_image.json")
    parser.add_argument("--by", default="race", choices=["race", "gender", "age"],
                        help="FairFace field to group by (default: race)")
    parser.add_argument("--method", default="MoFRR", help="method name in per_image.json (default: MoFRR)")
    parser.add_argument("--data", default=None, help="the shard folder the run evaluated (default: $MOFRR_DATA)")
    args = parser.parse_args()

    path = args.report / "per_image.json"
    if not path.is_file():
        parser.error(f"{path} does not exist (run `mofrr eval --data <shards> --out {args.report}` first)")
    entries = json.loads(path.read_text())
    if not entries or args.method not in entries[0]["methods"]:
        known = ", ".join(entries[0]["methods"]) if entries else "none"
        parser.error(f"{path}: no method {args.method!r} (known: {known})")
    meta = face_metadata(args.data)
    missing = [e["key"] for e in entries if e["key"] not in meta]
    if missing:
        parser.error(f"{len(missing)} faces of {path} are not in the shards of --data (first: {missing[0]})")

    groups: dict[str, list[dict]] = defaultdict(list)
    for e in entries:
        groups[group_of(meta[e["key"]], args.by)].append(e)
    gates = list(entries[0]["methods"][args.method].get("probabilities", {}))
    has_identity = entries[0]["methods"][args.method].get("identity") is not None

    head = [args.by, "faces", "input PSNR", "gain (dB)"] + (["identity in -> out"] if has_identity else [])
    head += [f"{g}: recall / FP rate (gain on FPs, dB summed)" for g in gates]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, rows in sorted(groups.items()):
        m = [e["methods"][args.method] for e in rows]
        cells = [name, str(len(rows)), f"{mean(e['input']['psnr'] for e in rows):.2f}",
                 f"{mean(x['psnr_gain'] for x in m):+.2f}"]
        if has_identity:
            cells.append(f"{mean(e['input']['identity'] for e in rows):.4f} -> {mean(x['identity'] for x in m):.4f}")
        cells += [gate_row(rows, args.method, g) for g in gates]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
