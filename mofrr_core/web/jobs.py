"""One upload of ``mofrr serve`` -> restored PNG, forensic report folder and its zip, in a work folder.

No gradio here: :class:`Restorer` is what the page calls, and what the tests call directly. It uses the
same functions as ``mofrr restore --report`` (``load_image``, ``restore_photo``, ``report_info``,
``write_report``, ``save_image_atomic``), so the page's downloads are the files the CLI would write.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import shutil
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mofrr_core.inputs import check_seed, check_steps
from mofrr_core.io import ImageLoadError, load_image, save_image_atomic
from mofrr_core.pipeline import Pipeline
from mofrr_core.report import ReportFiles, report_info, write_report
from mofrr_core.restore import (
    NoFaceError,
    NoLandmarkProviderError,
    RestoreResult,
    failure_message,
    restore_photo,
)

logger = logging.getLogger(__name__)

EXPECTED_ERRORS = (ImageLoadError, NoFaceError, NoLandmarkProviderError, OSError, ValueError)
"""Bad uploads and bad settings: shown as the CLI's one-line message, the traceback is not needed."""
STEM_MAX = 100  # characters of the upload's name kept in the names of the files to download
Progress = Callable[[float, str], None]


class UploadError(ValueError):
    """A restoration that failed, with the one line ``<file>: <reason>`` that ``mofrr restore`` would print."""


@dataclass(frozen=True)
class RestoreSettings:
    """What the page's controls say: ``--aligned``, ``--steps``, ``--seed`` and the experts to use."""

    aligned: bool = False
    steps: int | None = None
    seed: int = 0
    experts: tuple[str, ...] | None = None
    """``None``: every expert of the default pipeline."""


@dataclass
class WebResult:
    """One restored upload: the arrays to show and the files to download."""

    name: str
    image: np.ndarray
    result: RestoreResult
    thresholds: dict[str, float]  # per type, the probability above which its gate fires
    restored_png: Path
    report: ReportFiles
    report_zip: Path


class PipelineCache:
    """Pipelines per expert selection (``load_pipeline`` is called once per selection, the last few kept)."""

    def __init__(self, load: Callable[[tuple[str, ...]], Pipeline], default: Pipeline, size: int = 4) -> None:
        self.load = load
        self.names = tuple(slot.name for slot in default.experts)
        self.default = default
        self.size = size
        self._cache: OrderedDict[tuple[str, ...], Pipeline] = OrderedDict({self.names: default})

    def get(self, experts: Sequence[str] | None = None) -> Pipeline:
        """The pipeline with ``experts`` (kept in the default pipeline's order); ``None``: the default one."""
        if experts is None:
            return self.default
        unknown = sorted(set(experts) - set(self.names))
        if unknown or not experts:
            problem = f"unknown expert(s) {', '.join(unknown)}" if unknown else "no expert selected"
            raise ValueError(f"experts: {problem} (available: {', '.join(self.names)})")
        key = tuple(name for name in self.names if name in experts)
        if key not in self._cache:
            self._cache[key] = self.load(key)
            while len(self._cache) > self.size:
                oldest = next(k for k in self._cache if k != self.names)  # the default pipeline stays
                del self._cache[oldest]
        self._cache.move_to_end(key)
        return self._cache[key]


class Restorer:
    """Restores uploads into ``workdir/<n>-<name>/`` (the ``keep`` newest job folders are kept)."""

    def __init__(self, pipelines: PipelineCache, workdir: str | Path, detector=None,
                 detector_error: str | None = None, keep: int = 16) -> None:
        self.pipelines = pipelines
        self.workdir = Path(workdir)
        self.detector = detector
        self.detector_error = detector_error
        self.keep = keep
        self._counter = itertools.count(1)

    def restore(self, upload: str | Path, settings: RestoreSettings, progress: Progress | None = None) -> WebResult:
        """Restore ``upload`` and write its report; :class:`UploadError` with the CLI's one line on failure."""
        upload = Path(upload)
        name = upload.name
        try:
            return self._restore(upload, settings, progress or (lambda fraction, text: None))
        except EXPECTED_ERRORS as error:
            text = " ".join(str(error).replace(str(upload), name).split()) or type(error).__name__
            raise UploadError(failure_message(Path(name), RuntimeError(text), expected=True)) from None
        except Exception as error:  # noqa: BLE001 - one line on the page, the traceback in the server's log
            logger.exception("restoring %s failed", upload)
            raise UploadError(f"{name}: {type(error).__name__}: {error} (the server's log has the traceback)") from None

    def _restore(self, upload: Path, settings: RestoreSettings, progress: Progress) -> WebResult:
        try:
            check_steps(settings.steps, "steps"), check_seed(settings.seed, "seed")
        except TypeError as error:  # a float or a string from the page: a bad setting like any other
            raise ValueError(str(error)) from None
        progress(0.05, "reading the photo")
        started = time.perf_counter()
        image = load_image(upload)
        load_s = time.perf_counter() - started
        progress(0.15, "loading the pipeline")
        pipeline = self.pipelines.get(settings.experts)
        if not settings.aligned and self.detector is None:
            raise NoLandmarkProviderError(self.detector_error or "no face landmark detector installed")
        progress(0.3, "restoring" if settings.aligned else "finding faces and restoring")
        result = restore_photo(pipeline, image, aligned=settings.aligned, detector=self.detector,
                               steps=settings.steps, seed=settings.seed)
        result.timings = {"load_s": load_s, **result.timings}
        progress(0.8, "writing the report")
        job = self.new_job_folder(upload.stem)
        stem = f"{upload.stem[:STEM_MAX]}-restored"
        restored_png = job / f"{stem}.png"
        args = argparse.Namespace(aligned=settings.aligned, steps=settings.steps, seed=settings.seed,
                                  no_timings=False)
        info = report_info(pipeline, args, upload, restored_png, result)
        info.update(input=upload.name, output=restored_png.name)  # not the server's temporary paths
        report = write_report(job / f"{stem}-report", stem, image, result.image, info, region=result.region)
        save_image_atomic(result.image, restored_png)
        progress(0.95, "zipping the report")
        report_zip = zip_folder(job / f"{stem}-report", job / f"{stem}-report.zip")
        return WebResult(upload.name, image, result, pipeline.gate_thresholds, restored_png, report, report_zip)

    def new_job_folder(self, stem: str) -> Path:
        """A fresh ``workdir/<n>-<stem>`` folder; job folders beyond the ``keep`` newest are deleted."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        job = self.workdir / f"{next(self._counter):05d}-{stem[:STEM_MAX]}"
        job.mkdir()
        jobs = sorted((p for p in self.workdir.iterdir() if p.is_dir()), key=lambda p: p.name)
        for old in jobs[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return job


def zip_folder(folder: str | Path, destination: str | Path) -> Path:
    """``folder``'s files in a zip at ``destination``, under the folder's name (refuses to overwrite)."""
    folder, destination = Path(folder), Path(destination)
    if destination.exists():
        raise FileExistsError(f"{destination} exists")
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, f"{folder.name}/{path.name}")
        partial.replace(destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return destination
