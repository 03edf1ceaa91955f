"""Restore the original face(s) in retouched photos.

By default every face (about 28 px or more between the eyes, anywhere) is found by a landmark
provider (MediaPipe: pip install 'mofrr[landmarks]' && pip install --no-deps mediapipe==0.10.21),
aligned to the training geometry, restored and pasted back with a feathered mask (only the
restoration residual inside the face mask changes the photo); --aligned treats each input as one
pre-aligned face crop. Outputs are written atomically (PNG by default) and an existing output is
never replaced without --overwrite; --skip-existing resumes an interrupted batch.

Several processes share a large batch (same outputs, one summary; docs/restore.md, "Several processes"):
  accelerate launch --quiet --multi_gpu --num_processes 2 -m mofrr_core.cli restore photos/ -o out/

exit codes: 0 every input restored (or skipped), 1 some inputs failed (each named on one line), 2 usage or
setup error (bad option, output clash, unwritable folder, no landmark provider, unavailable device, broken
registry or weights): nothing was processed, 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mofrr_core.inputs import check_device, check_restore_photo, check_seed
from mofrr_core.io import (
    ImageLoadError,
    check_name_length,
    load_image,
    plan_outputs,
    prepare_output_dir,
    remove_stale_partials,
    resolve_inputs,
    save_image_atomic,
)
from mofrr_core.pipeline import Pipeline, load_pipeline
from mofrr_core.report import report_info

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
INSTALL_HINT = "pip install 'mofrr[landmarks]' && pip install --no-deps mediapipe==0.10.21"


class NoFaceError(RuntimeError):
    """No (usable) face was found in an image (whole-photo mode)."""


class NoLandmarkProviderError(RuntimeError):
    """Whole-photo mode was asked for but no face landmark provider is installed."""


@dataclass
class RestoreResult:
    """A restored photo and what happened to each of its faces.

    ``faces`` holds one dict per restored face (box, 5 points, router probabilities, detected
    types, degrees, experts run); ``region`` is the box ``(x0, y0, x1, y1)`` covering them.
    """

    image: np.ndarray
    faces: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    region: tuple[int, int, int, int] | None = None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        return check_seed(int(text), "--seed")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error) if "--seed" in str(error) else
                                         f"expected an integer, got {text!r}") from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (and reports)")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip inputs whose output exists (resume an interrupted batch)")
    parser.add_argument("--ext", default=".png", help="output format by suffix (default .png, lossless)")
    parser.add_argument("--aligned", action="store_true",
                        help="inputs are aligned face crops: skip face detection and paste-back")
    parser.add_argument("--max-faces", type=_positive_int, default=8,
                        help="restore at most N faces per photo, largest first (default 8)")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write a forensic report per image into DIR: <name>.json (router probabilities, "
                             "degrees, experts, steps, seed, weights sha256, versions, timings), "
                             "<name>.heatmap.png and <name>.side_by_side.png")
    parser.add_argument("--no-timings", action="store_true",
                        help="leave timings out of the report JSON (byte-identical reports for a fixed --seed)")
    source = parser.add_argument_group("which pipeline")
    source.add_argument("--registry", type=Path, help="registry.yaml to build the pipeline from (default: packaged)")
    source.add_argument("--pipeline", type=Path, help="a folder written by Pipeline.save_pretrained")
    source.add_argument("--experts", help="comma-separated expert names to use (default: all in the registry)")
    source.add_argument("--allow-untrained", action="store_true",
                        help="build experts without weights untrained (identity) instead of skipping them")
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument("--steps", type=_positive_int, help="DDIM steps (default: from the registry)")
    sampling.add_argument("--seed", type=_seed, default=0, help="random seed (results are deterministic per seed)")
    sampling.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if available)")


# -- setup ---------------------------------------------------------------------------------------
def face_detector():
    """The highest-priority installed landmark provider's ``detect(image) -> list[FaceLandmarks]``."""
    from mofrr_core.plugins import get_landmark_providers

    providers = sorted(get_landmark_providers().values(), key=lambda p: -p.priority)
    errors = []
    for provider in providers:
        try:
            return provider.factory()
        except ImportError as error:  # optional dependency not installed: try the next one
            errors.append(f"{provider.name}: {error}")
    raise NoLandmarkProviderError(
        f"whole-photo mode needs a face landmark detector and none is installed: {INSTALL_HINT} "
        "(MediaPipe), or pass --aligned if the inputs are already face crops"
        + (f" [{'; '.join(errors)}]" if errors else ""))


# -- one photo -----------------------------------------------------------------------------------
def restore_photo(pipeline: Pipeline, image: np.ndarray, *, aligned: bool, detector=None, max_faces: int = 8,
                  steps: int | None = None, seed: int = 0) -> RestoreResult:
    """Restore one photo: the whole image as a crop (``aligned``) or every detected face.

    Whole-photo mode: ``detector(image)`` returns landmarks per face (``FaceLandmarks`` or
    ``[P, 2]`` arrays); the ``max_faces`` largest usable faces are aligned, restored in one
    batch and pasted back. Faces are aligned at ``pipeline.face_crop_size`` (the experts read them at
    ``pipeline.resolution``; the router at its own size, as ``router_crop`` says: :mod:`mofrr_core.router_view`).
    ``NoFaceError`` if no usable face is found.
    """
    image, max_faces, steps, seed = check_restore_photo(image, aligned=aligned, detector=detector,
                                                        max_faces=max_faces, steps=steps, seed=seed)
    start = time.perf_counter()
    height, width = image.shape[:2]
    if aligned:
        out = pipeline([image], num_inference_steps=steps, seed=seed, output_type="np")
        info = {"index": 0, "box": [0, 0, width, height], **face_info(pipeline, out, 0), "router_view": "crop"}
        return RestoreResult(out.images[0], [info], {"restore_s": time.perf_counter() - start},
                             (0, 0, width, height))
    from mofrr_core.faces import paste_back

    faces, crops, router = photo_faces(pipeline, image, detector, max_faces)
    detect_s, size = time.perf_counter() - start, pipeline.face_crop_size  # detection and alignment
    out = pipeline(crops, num_inference_steps=steps, seed=seed, output_type="np", **router.pipeline_kwargs())
    restore_s = time.perf_counter() - start - detect_s
    restored, infos, boxes = image.copy(), [], []
    for i, (_, points5, matrix) in enumerate(faces):
        paste_back(restored, out.images[i], matrix, crop=crops[i], inplace=True)
        box = mask_box(matrix, size, image.shape)
        boxes.append(box)
        infos.append({"index": i, "box": list(box), "points5": np.round(points5, 1).tolist(),
                      **face_info(pipeline, out, i), **router.face_report(i)})
    region = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    timings = {"detect_s": detect_s, "restore_s": restore_s,
               "paste_s": time.perf_counter() - start - detect_s - restore_s}
    return RestoreResult(restored, infos, timings, region)


def photo_faces(pipeline: Pipeline, image: np.ndarray, detector, max_faces: int = 8
                ) -> tuple[list, list[np.ndarray], Any]:
    """The ``max_faces`` largest usable faces of a photo (:func:`usable_faces` rows), their expert crops and what
    the router reads of them (:class:`~mofrr_core.router_view.RouterCrops`); ``NoFaceError`` if none is usable."""
    from mofrr_core.faces import align_face
    from mofrr_core.router_view import router_crops

    found = list(detector(image) or [])
    size = pipeline.face_crop_size
    faces = usable_faces(found, image.shape, size, pipeline.alignment)
    if not faces:
        raise NoFaceError("no face found (use --aligned if this is a face crop)" if not found else
                          f"{len(found)} face(s) detected but none usable (outside the image or degenerate)")
    faces = faces[:max_faces]
    crops = [align_face(image, matrix, size) for _, _, matrix in faces]
    return faces, crops, router_crops(pipeline, image, faces)


def route_largest_face(pipeline: Pipeline, image: np.ndarray, detector) -> tuple[dict[str, float], str] | None:
    """The router's probabilities for the largest face of a photo, read as whole-photo mode reads it, and its
    ``router_view`` (no expert runs); ``None`` when no usable face is found."""
    try:
        _, crops, router = photo_faces(pipeline, image, detector, max_faces=1)
    except NoFaceError:
        return None
    out = pipeline(crops, active="none", output_type="np", **router.pipeline_kwargs())
    return out.probabilities[0], router.views[0]


def usable_faces(found: list, shape: tuple[int, ...], size: int, alignment: str = "similarity"
                 ) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """``(scale, points5, matrix)`` of the faces that can be aligned, largest face first."""
    from mofrr_core.faces import alignment_scale, face_alignment, points5_from_landmarks

    height, width = shape[:2]
    faces = []
    for landmarks in found:
        try:
            points5 = points5_from_landmarks(landmarks)
            matrix = face_alignment(points5, size, alignment)
        except ValueError:
            continue
        cx, cy = points5.mean(axis=0)
        if 0 <= cx < width and 0 <= cy < height:
            faces.append((alignment_scale(matrix), points5, matrix))
    return sorted(faces, key=lambda face: face[0])  # fewer crop pixels per photo pixel = larger face


def mask_box(matrix: np.ndarray, size: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Box ``(x0, y0, x1, y1)`` of the pixels the paste-back may change."""
    from mofrr_core.faces import paste_mask

    mask, (x0, y0, x1, y1) = paste_mask(matrix, size, shape)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (x0, y0, x0, y0)
    return (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)


def face_info(pipeline: Pipeline, out, i: int) -> dict[str, Any]:
    """Router probabilities, detected types, degree per type and experts run for image ``i`` of ``out``;
    ``explained_away``: the detected types whose expert did not run, their gate asked for more confidence beside a
    confounding retouching or in a view that kept its JPEG grid (registry ``confounded_gates``, ``grid_gates``);
    ``gate_thresholds`` where this face's differ from the photo's (a router calibrated per view,
    ``view_gate_offsets``); ``keep_low_frequencies``: the blur (px) whose part of the change was removed, where it
    was (registry ``keep_low_frequencies``)."""
    types = {slot.name: slot.retouch_type for slot in pipeline.experts}
    probabilities = out.probabilities[i]
    thresholds = out.face_thresholds[i] if out.face_thresholds else out.thresholds
    detected = [t for t, p in probabilities.items() if p > thresholds.get(t, pipeline.threshold)]
    ran = {types[name] for name in out.experts_run[i] if name in types}
    own = {t: round(v, 4) for t, v in thresholds.items()} if thresholds != out.thresholds else {}
    sigma = out.low_frequency_sigmas[i] if out.low_frequency_sigmas else 0.0
    return {
        "probabilities": probabilities,
        **({"gate_thresholds": own} if own else {}),
        "detected": detected,
        "explained_away": [t for t in detected if t in types.values() and t not in ran],
        "degrees": {types.get(name, name): degree for name, degree in out.degrees[i].items()},
        "experts_run": out.experts_run[i],
        **({"keep_low_frequencies": sigma} if sigma else {}),
    }


def describe(faces: list[dict[str, Any]]) -> str:
    """One line per photo: what the router found and which experts ran, per face."""
    parts = []
    for face in faces:
        away = face.get("explained_away", [])
        short = ", not restored: its gate needs more confidence here"
        found = [f"{t} ({face['probabilities'][t]:.2f}{short * (t in away)})" for t in face["detected"]]
        parts.append(f"found {', '.join(found) or 'no retouching'}; "
                     f"experts run: {', '.join(face['experts_run']) or 'none'}")
    prefix = f"{len(faces)} faces: " if len(faces) > 1 else ""
    return prefix + " | ".join(parts)


# -- the command ---------------------------------------------------------------------------------
@contextmanager
def terminate_as_interrupt():
    """SIGTERM (plain ``kill``) raises ``KeyboardInterrupt`` meanwhile, like Ctrl-C: exit 130, the
    current image not written, "interrupted"."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    from mofrr_core.processes import batch_processes

    with terminate_as_interrupt(), batch_processes(args.device) as state:
        return run_batch(args, state)


def check_experts_option(text: str | None) -> None:
    """``--experts``: at least one name, each an installed expert; ``ValueError`` naming the others."""
    if text is None:
        return
    from mofrr_core.plugins import get_experts

    names = [name.strip() for name in text.split(",") if name.strip()]
    installed = sorted(get_experts())
    if not names:
        raise ValueError(f"--experts {text!r}: no expert name given (installed: {', '.join(installed)})")
    unknown = [name for name in names if name not in installed]
    if unknown:
        raise ValueError(f"--experts: unknown expert(s) {', '.join(unknown)} (installed: {', '.join(installed)})")


def setup(args: argparse.Namespace, state):
    """``(todo, skipped, detector, pipeline)``: everything checked and loaded before the first image.

    The main process plans the batch and removes leftovers (the others get its plan), every process
    loads the pipeline, the main process checks the output folders; a failure anywhere is raised on
    every process (``OtherProcessFailed`` where it did not happen).
    """
    from mofrr_core.processes import run_everywhere

    todo, skipped = run_everywhere(state, lambda: plan_and_clean(args), setup_error_message, main_only=True)
    if not todo:
        return todo, skipped, None, None
    detector, pipeline = run_everywhere(state, lambda: load_restorer(args, state), setup_error_message)
    run_everywhere(state, lambda: prepare_output_dirs(args), setup_error_message, main_only=True)
    return todo, skipped, detector, pipeline


def plan_and_clean(args: argparse.Namespace) -> tuple[list[tuple[Path, Path]], int]:
    """``(todo [(src, dst)], number skipped)``, the leftovers of a killed run removed."""
    todo, skipped = plan_batch(args)
    remove_leftovers(args, todo + skipped)
    return todo, len(skipped)


def load_restorer(args: argparse.Namespace, state):
    """``(detector, pipeline)`` on this process's device, the options checked first."""
    from mofrr_core.processes import process_device

    check_experts_option(args.experts)
    args.device = process_device(state, check_device(args.device))
    if args.pipeline and (args.registry or args.experts or args.allow_untrained):
        raise ValueError("--pipeline cannot be combined with --registry, --experts or --allow-untrained")
    detector = None if args.aligned else face_detector()
    pipeline = load_pipeline(args.pipeline or args.registry, args.device, args.experts, args.allow_untrained,
                             label="--pipeline" if args.pipeline else "--registry")
    return detector, pipeline


def prepare_output_dirs(args: argparse.Namespace) -> None:
    prepare_output_dir(args.output)
    if args.report:
        prepare_output_dir(args.report)


def setup_error_message(error: BaseException) -> str:
    """The one line after ``error:`` for a failure before the first image."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    return str(message).strip() or type(error).__name__


def remove_leftovers(args: argparse.Namespace, planned: list[tuple[Path, Path]]) -> None:
    """Delete the ``.<name>.*.partial`` files a killed run left for these outputs and their reports."""
    stale = [dst for _, dst in planned]
    if args.report:
        from mofrr_core.report import report_paths

        stale += [path for _, dst in planned for path in report_paths(args.report, dst.stem).paths()]
    remove_stale_partials(stale)


def run_batch(args: argparse.Namespace, state) -> int:
    """Restore every input; ``state`` (``processes.batch_processes``) splits them across processes.

    Each process restores its share of the inputs; the main process prints the summary and every
    process returns the same exit code.
    """
    from mofrr_core.processes import OtherProcessFailed, gather_outcomes

    try:
        todo, skipped, detector, pipeline = setup(args, state)
    except Exception as error:  # noqa: BLE001 - any failure before the first image is a setup error
        if getattr(args, "verbose", False) and not isinstance(error, OtherProcessFailed):
            raise
        if state.is_main_process:
            print(f"error: {setup_error_message(error)}", file=sys.stderr)
        return EXIT_USAGE
    if not todo:
        if state.is_main_process:
            print(f"nothing to do ({skipped} output(s) exist; --overwrite to replace them)")
        return EXIT_OK
    with state.split_between_processes(todo) as share:
        desc = "restoring" if state.num_processes == 1 else f"restoring (process 0 of {state.num_processes})"
        progress = tqdm(share, desc=desc, unit="img", disable=len(share) < 2 or not state.is_main_process,
                        file=sys.stderr)
        failed = restore_share(args, progress, detector, pipeline)
    restored, failed = gather_outcomes(state, len(share) - len(failed), failed)
    if state.is_main_process:
        print(batch_summary(args.output, restored, failed, skipped))
    return EXIT_FAILED if failed else EXIT_OK


def restore_share(args: argparse.Namespace, todo, detector, pipeline: Pipeline) -> list[str]:
    """Restore ``(src, dst)`` pairs one by one (one line per image); the inputs that failed."""
    verbose = bool(getattr(args, "verbose", False))
    if args.report:
        from mofrr_core.report import write_report

    failed = []
    for src, dst in todo:
        written: list[Path] = []
        try:
            started = time.perf_counter()
            image = load_image(src)
            load_s = time.perf_counter() - started
            result = restore_photo(pipeline, image, aligned=args.aligned, detector=detector,
                                   max_faces=args.max_faces, steps=args.steps, seed=args.seed)
            result.timings = {"load_s": load_s, **result.timings}
            if args.report:  # the report first: an output image means its report is complete too
                info = report_info(pipeline, args, src, dst, result)
                written = write_report(args.report, dst.stem, image, result.image, info, region=result.region,
                                       overwrite=args.overwrite or args.skip_existing).paths()
            image = None  # the input is no longer needed: encoding the output needs memory of its own
            save_image_atomic(result.image, dst, overwrite=args.overwrite)
        except KeyboardInterrupt:
            _remove(written)
            raise
        except Exception as error:  # noqa: BLE001 - one line per failed input, the batch goes on
            _remove(written)
            expected = isinstance(error, (ImageLoadError, NoFaceError, OSError))
            if verbose and not expected:
                raise
            failed.append(str(src))
            tqdm.write(f"error: {failure_message(src, error, expected)}", file=sys.stderr)
            continue
        tqdm.write(f"{src} -> {dst}: {describe(result.faces)}")
    return failed


def batch_summary(output: Path, restored: int, failed: list[str], skipped: int, named: int = 10) -> str:
    """``restored N image(s) into OUT, F failed (the first ``named`` inputs), S skipped``."""
    text = f"restored {restored} image(s) into {output}"
    if failed:
        more = f", and {len(failed) - named} more" if len(failed) > named else ""
        text += f", {len(failed)} failed ({', '.join(failed[:named])}{more})"
    return text + (f", {skipped} skipped" if skipped else "")


def plan_batch(args: argparse.Namespace) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """``(todo [(src, dst)], skipped [(src, dst)])``; refuses output and report clashes up front."""
    inputs = resolve_inputs(args.inputs)
    plan = plan_outputs(inputs, args.output, ext=args.ext, overwrite=args.overwrite,
                        skip_existing=args.skip_existing)
    todo = [(src, dst) for src, dst, action in plan if action == "write"]
    if args.report:
        check_report_names(args, inputs, plan, todo)
    return todo, [(src, dst) for src, dst, action in plan if action == "skip"]


def check_report_names(args: argparse.Namespace, inputs: list[Path], plan: list, todo: list) -> None:
    """Refuse report files that would replace an input, an output image or another report, or whose
    names are too long; an existing report without ``--overwrite``/``--skip-existing`` too."""
    from mofrr_core.report import report_paths

    sources = {src.resolve() for src in inputs}
    owners = {dst.resolve(): f"the output of {src}" for src, dst, _ in plan}
    for src, dst in todo:
        for path in report_paths(args.report, dst.stem).paths():
            if path.resolve() in sources:
                raise ValueError(f"{path}: report file would replace an input; choose another --report folder")
            if path.resolve() in owners:
                raise ValueError(f"{path}: the report of {src} and {owners[path.resolve()]} would have the same "
                                 "name; choose another --report folder")
            owners[path.resolve()] = f"the report of {src}"
            check_name_length(path, "rename the input: its report adds up to 17 characters to its name")
            # an existing report without its image is left over from an interrupted run: replaced on resume
            if path.exists() and not (args.overwrite or args.skip_existing):
                raise FileExistsError(f"{path} exists; pass --overwrite to replace it")


def failure_message(src: Path, error: BaseException, expected: bool) -> str:
    """``<file>: <reason>`` on one line (the file named once)."""
    text = " ".join(str(error).split()) or type(error).__name__
    if not expected:
        text = f"{type(error).__name__}: {text} (run 'mofrr -v restore ...' for the traceback)"
    return text if str(src) in text else f"{src}: {text}"


def _remove(paths: list[Path]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)
