"""Write a fixed paired dataset (retouched/original PNGs + manifest.json) from the face shards.

Writes OUT/original/<id>.png, OUT/retouched/<id>.png and OUT/manifest.json (version, arguments,
degree thresholds used, and per item: id, face key, split, ops applied with API and strength,
labels and degrees per type, input PSNR). Items are generated deterministically from
(--seed, --split, item index), so a run is resumable: existing complete items are kept, the
manifest is written atomically every few items and at the end, and running again with more
-n extends the set. A folder holding a manifest of a different configuration is never
overwritten without --overwrite.

--ops: single (one random type per item), multi (2-4 types), mixed (0-4 types, 20 % untouched
unless --p-clean), or a comma list of ops applied to every item (e.g. eye, or white,smooth).

Degrees (--degrees): auto fits the paper's PSNR thresholds on --fit-n training samples per
type (cached in ~/.cache/mofrr and copied to OUT/degree_thresholds.json), PATH loads a
thresholds JSON, none uses the strength fallback. Cross-implementation test set:
--apis smooth=guided (and train with exclude_apis={"smooth": ["guided"]}); see docs/data.md.
Held-out test set: --apis-set heldout (only the apis of mofrr_core/retouch/heldout.yaml; refused
on --split train). --postprocess app|jpeg|none post-processes every input (docs/retouch.md).

example:
  mofrr synth --data ../shared/data/faces --out pairs/test-multi --split test -n 500 --ops multi
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mofrr_core.data.degrees import DegreeThresholds, engine_version, fit_degree_thresholds, write_json_atomic
from mofrr_core.data.pairs import DEFAULT_TYPES, RetouchPairs
from mofrr_core.data.shards import resolve_data_root
from mofrr_core.data.splits import SPLITS

FORMAT = "mofrr-synth"
FORMAT_VERSION = 1
OPS_MODES = {"single": (1, 1), "multi": (2, 4), "mixed": (0, 4)}
FLUSH_EVERY = 50


def _parse_apis(text: str | None, multi: bool) -> dict[str, Any] | None:
    if not text:
        return None
    result: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        op, sep, api = part.partition("=")
        if not sep or not op or not api:
            raise argparse.ArgumentTypeError(f"{part!r}: expected OP=API (e.g. smooth=guided)")
        if multi:
            result.setdefault(op, []).append(api)
        elif op in result:
            raise argparse.ArgumentTypeError(f"{part!r}: op {op!r} given twice")
        else:
            result[op] = api
    return result


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mofrr synth``."""
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of faces-*.tar shards (default: $MOFRR_DATA or ../shared/data/faces)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; resumable)")
    parser.add_argument("--split", choices=SPLITS, default="test", help="which faces to use (default: test)")
    parser.add_argument("-n", "--num", type=int, default=500, dest="n", help="number of pairs (default: 500)")
    parser.add_argument("--ops", default="mixed",
                        help="single | multi | mixed | comma list of ops such as eye or white,smooth (default: mixed)")
    parser.add_argument("--resolution", type=int, default=256, help="side of the written images (default: 256)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the item generator (default: 0)")
    parser.add_argument("--p-clean", type=float, default=0.0,
                        help="share of untouched items (default: 0 = as the --ops mode implies)")
    parser.add_argument("--min-sharpness", type=float, default=None,
                        help="use only faces with metadata sharpness >= this (e.g. 2.0 for real skin detail)")
    parser.add_argument("--apis", default=None, help="force an implementation per op: OP=API[,OP=API] "
                                                     "(cross-API test set: smooth=guided)")
    parser.add_argument("--exclude-apis", default=None, help="never use these implementations: OP=API[,OP=API]")
    parser.add_argument("--apis-set", choices=("train", "heldout", "all"), default="train",
                        help="implementations to draw from: train (default), heldout (held-out test set) or all")
    parser.add_argument("--postprocess", default="none",
                        help="post-processing of every input: none (default), app, jpeg (presets in "
                             "mofrr_core/retouch/postprocess.py)")
    parser.add_argument("--degrees", default="auto",
                        help="auto (fit PSNR thresholds on the train split, cached) | none (strength fallback) "
                             "| PATH to a degree-thresholds JSON (default: auto)")
    parser.add_argument("--fit-n", type=int, default=1000,
                        help="training samples per type when fitting thresholds (default: 1000)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output of a different configuration")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _ops_config(text: str) -> tuple[list[str] | None, tuple[int, int]]:
    if text in OPS_MODES:
        return None, OPS_MODES[text]
    ops = [op.strip() for op in text.split(",") if op.strip()]
    if not ops:
        raise ValueError(f"--ops {text!r}: expected single, multi, mixed or a comma list of ops")
    return ops, (len(ops), len(ops))


def _thresholds(args: argparse.Namespace, root: Path, exclude_apis: dict | None) -> DegreeThresholds | None:
    choice = str(args.degrees)
    if choice == "none":
        return None
    if choice == "auto":
        # a property of the training distribution, not of this run: always seed 0, so runs share the cache
        return fit_degree_thresholds(root, n=args.fit_n, resolution=args.resolution, seed=0,
                                     exclude_apis=exclude_apis, progress=not args.quiet)
    return DegreeThresholds.load(choice)


def _same_config(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if k != "n" and json.dumps(old.get(k), sort_keys=True) != json.dumps(new.get(k),
                                                                                                  sort_keys=True)]


def previous_manifest(out: Path, overwrite: bool) -> dict[str, Any] | None:
    """The manifest an earlier ``mofrr synth`` left in ``out`` (``None``: none, or ``overwrite`` and unreadable);
    refuses a foreign manifest or images without one unless ``overwrite``."""
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text())
            if old.get("format") != FORMAT:
                raise ValueError("not a mofrr synth manifest")
            return old
        except (json.JSONDecodeError, ValueError) as error:
            if not overwrite:
                raise FileExistsError(f"{manifest_path}: unreadable or foreign manifest ({error}); pass --overwrite "
                                      f"to replace it") from None
            return None
    if not overwrite and any((out / sub).is_dir() and any((out / sub).iterdir()) for sub in ("original", "retouched")):
        raise FileExistsError(f"{out}: holds original/ or retouched/ files but no manifest.json; pass --overwrite "
                              f"to write into it anyway")
    return None


def run(args: argparse.Namespace) -> int:
    """Generate (or resume) the paired dataset; returns 0 on success."""
    from tqdm.auto import tqdm

    from mofrr_core.io import save_image_atomic

    if args.n <= 0:
        raise ValueError(f"-n must be positive, got {args.n}")
    root = resolve_data_root(args.data).resolve()
    ops, num_ops = _ops_config(args.ops)
    apis = _parse_apis(args.apis, multi=False)
    exclude_apis = _parse_apis(args.exclude_apis, multi=True)
    out: Path = args.out
    manifest_path = out / "manifest.json"
    old = previous_manifest(out, args.overwrite)

    config: dict[str, Any] = {
        "data": str(root), "split": args.split, "n": args.n, "ops": args.ops, "resolution": args.resolution,
        "seed": args.seed, "p_clean": args.p_clean, "min_sharpness": args.min_sharpness, "apis": apis,
        "exclude_apis": exclude_apis, "degrees": args.degrees if args.degrees in ("auto", "none") else "file",
        "apis_set": args.apis_set, "postprocess": args.postprocess}
    reuse = old is not None and not args.overwrite

    def refuse_if_changed(keys: list[str]) -> None:
        changed = _same_config({k: old.get("args", {}).get(k) for k in keys}, {k: config.get(k) for k in keys})
        if changed:
            raise FileExistsError(f"{manifest_path}: written with a different configuration (differs in "
                                  f"{', '.join(changed)}); pass --overwrite to replace it, or choose another --out")

    if reuse:  # before the (possibly long) threshold fit
        refuse_if_changed(list(config))
    thresholds = _thresholds(args, root, exclude_apis)
    config["degree_cuts"] = thresholds.cuts if thresholds else None
    if reuse:
        refuse_if_changed(["degree_cuts"])
    kept: dict[str, dict[str, Any]] = {item["id"]: item for item in old.get("items", [])} if reuse else {}
    dataset = RetouchPairs(root, split=args.split, resolution=args.resolution, ops=ops, num_ops=num_ops,
                           types=DEFAULT_TYPES, seed=args.seed, length=args.n, min_sharpness=args.min_sharpness,
                           p_clean=args.p_clean, apis=apis, exclude_apis=exclude_apis, degree_thresholds=thresholds,
                           apis_set=args.apis_set, postprocess=args.postprocess)
    if thresholds is not None:
        write_json_atomic(out / "degree_thresholds.json", thresholds.to_dict())

    def manifest(items: list[dict[str, Any]], complete: bool) -> dict[str, Any]:
        from mofrr_core import __version__
        from mofrr_core.retouch.heldout import heldout_version

        return {"format": FORMAT, "version": FORMAT_VERSION, "mofrr_version": __version__, "engine": engine_version(),
                "heldout_version": heldout_version(),
                "args": config, "types": list(dataset.types), "degree_source": dataset.degree_source,
                "degree_thresholds": thresholds.to_dict() if thresholds else None, "complete": complete,
                "count": len(items), "items": items}

    items: list[dict[str, Any]] = []
    written = reused = 0
    bar = tqdm(range(args.n), desc=f"synth {args.split}", unit="pair", disable=args.quiet)
    for i in bar:
        item_id = f"{i:06d}"
        paths = {side: out / side / f"{item_id}.png" for side in ("original", "retouched")}
        exists = all(p.is_file() for p in paths.values())
        if exists and not args.overwrite and item_id in kept:
            items.append(kept[item_id])
            reused += 1
            continue
        sample = dataset.generate(i)
        if not exists or args.overwrite:
            save_image_atomic(sample.original, paths["original"], overwrite=True)
            save_image_atomic(sample.retouched, paths["retouched"], overwrite=True)
            written += 1
        else:
            reused += 1  # images complete, record lost (interrupted before a manifest flush): keep the files
        record = sample.record()
        items.append({"id": item_id, "key": record.pop("key"), "split": args.split,
                      "original": f"original/{item_id}.png", "retouched": f"retouched/{item_id}.png", **record})
        if written and written % FLUSH_EVERY == 0:
            write_json_atomic(manifest_path, manifest(items, complete=False))
        bar.set_postfix(written=written, kept=reused, refresh=False)
    bar.close()
    write_json_atomic(manifest_path, manifest(items, complete=True))
    if not args.quiet:
        print(f"{out}: {len(items)} pairs ({written} written, {reused} kept), degrees from {dataset.degree_source}")
    return 0
