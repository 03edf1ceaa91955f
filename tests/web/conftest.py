"""Fixtures for `mofrr serve`: a saved tiny pipeline and a Restorer on it."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.conftest import make_tiny_pipeline

# Gradio reads GRADIO_TEMP_DIR when it is imported (at collection): its files go here, not to /tmp/gradio.
GRADIO_TEMP_DIR = tempfile.mkdtemp(prefix="mofrr-tests-gradio-")
os.environ["GRADIO_TEMP_DIR"] = GRADIO_TEMP_DIR


@pytest.fixture(scope="session", autouse=True)
def remove_gradio_temp_dir():
    yield
    shutil.rmtree(GRADIO_TEMP_DIR, ignore_errors=True)


@pytest.fixture
def restorer(tmp_path, pipeline_dir):
    """A Restorer on the saved tiny pipeline (loaded like `mofrr restore --pipeline` loads it), no detector."""
    from mofrr_core.pipeline import load_pipeline
    from mofrr_core.web.jobs import PipelineCache, Restorer

    pipeline = load_pipeline(pipeline_dir, "cpu")
    pipelines = PipelineCache(lambda names: make_tiny_pipeline(experts=names), pipeline)
    return Restorer(pipelines, tmp_path / "work", detector=None, detector_error="no landmark provider (test)")


@pytest.fixture(autouse=True)
def gradio_temp_dir(tmp_path, monkeypatch):
    """Gradio's copies of served files go to the test's folder, not to the machine's /tmp/gradio."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
