"""``mofrr``: restore retouched faces, list experts, synthesise data, evaluate."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence

from mofrr_core import __version__

EPILOG = """examples:
  mofrr restore photo.jpg -o restored/              detect faces, restore, paste back
  mofrr restore crops/ -o out/ --aligned             folder of aligned face crops
  mofrr restore photo.jpg -o out/ --report report/   plus a forensic report per image
  mofrr experts                                      which experts are installed
  mofrr serve                                        local web page on http://127.0.0.1:7860/
  mofrr synth --data ../shared/data/faces --out pairs/ -n 500
"""

# Sub-commands living in their own modules: name -> (module, one-line help).
SUBCOMMANDS = {
    "restore": ("mofrr_core.restore", "restore the original face(s) from retouched photos"),
    "experts": ("mofrr_core.cli.experts", "list installed experts, plugins and weight status"),
    "synth": ("mofrr_core.data.synth", "write a fixed retouched/original paired dataset to disk"),
    "eval": ("mofrr_core.eval.run", "evaluate a pipeline on a paired test split (tables, plots)"),
    "serve": ("mofrr_core.web.serve", "start a local web page to restore photos (pip install 'mofrr[web]')"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mofrr",
        description="MoFRR: restore the original face from a retouched photo (whitening, smoothing, "
                    "face lifting, eye enlarging and mixes of them) with a mixture of diffusion experts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mofrr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show warnings and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.configure_parser(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    if not args.verbose:
        one_line_warnings()  # restore/eval print their own one-line messages
    return run_reporting_errors(lambda: args.run(args), args.verbose)


def one_line_warnings() -> None:
    """Show only ``UserWarning``s, each as one ``warning: ...`` line (the CLIs without ``-v``)."""
    warnings.simplefilter("ignore")
    warnings.simplefilter("default", UserWarning)
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"


def run_reporting_errors(run: Callable[[], int | None], verbose: bool, interrupted: str = "interrupted") -> int:
    """``run()`` as an exit code: an error is one ``error: ...`` line and 1 (its traceback with ``verbose``),
    Ctrl-C is ``interrupted`` and 130."""
    try:
        return int(run() or 0)
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one clear line, the traceback with -v
        if verbose:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
