"""List installed experts (name, retouching type, package, version, weights) and broken plugins."""

from __future__ import annotations

import argparse
import json

from mofrr_core.plugins import get_state
from mofrr_core.registry import ComponentConfig, weights_status


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def expert_rows() -> list[dict[str, str]]:
    """One row per registered expert, then one per broken plugin."""
    state = get_state()
    rows = []
    for spec in sorted(state.experts.values(), key=lambda s: (s.kind != "specialised", s.name)):
        component = ComponentConfig(f"experts.{spec.name}", spec.model_type, spec.weights)
        status = weights_status(component)
        rows.append({"name": spec.name, "type": spec.retouch_type or "(all)", "kind": spec.kind,
                     "model": spec.model_type, "package": spec.distribution, "version": spec.version,
                     "weights": status.split(":")[0], "detail": status if status.startswith("broken") else ""})
    for info in state.broken:
        rows.append({"name": info.name, "type": "?", "kind": "?", "model": "?", "package": info.distribution,
                     "version": info.version, "weights": "broken", "detail": info.error or ""})
    return rows


def format_table(rows: list[dict[str, str]], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    rows = expert_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no experts installed: pip install mofrr-expert-white mofrr-expert-smooth mofrr-expert-face "
              "mofrr-expert-eye mofrr-expert-shared")
        return 0
    print(format_table(rows, ["name", "type", "kind", "model", "package", "version", "weights"]))
    for row in rows:
        if row["detail"]:
            print(f"{row['name']}: {row['detail']}")
    return 0
