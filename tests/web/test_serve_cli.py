"""`mofrr serve` as a command: help, one-line setup errors (exit 2), no gradio needed by the rest of `mofrr`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

import pytest

from mofrr_core.cli import main
from mofrr_core.web.serve import OFFLINE_ENVIRONMENT


@pytest.fixture
def serve_env(tmp_path, monkeypatch):
    """A TMPDIR of the test's own and the environment variables serve sets, restored afterwards."""
    for key in [*OFFLINE_ENVIRONMENT, "GRADIO_TEMP_DIR"]:
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path / "tmp"


def test_help_explains_the_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    for text in ("--host", "--port", "127.0.0.1", "--aligned", "--registry", "--experts", "--device",
                 "pip install 'mofrr[web]'", "offline", "temporary folder"):
        assert text in out, text


def test_bad_port_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--port", "70000"])
    assert info.value.code == 2 and "expected a port number 0..65535" in capsys.readouterr().err


def test_without_gradio_exit_2_with_the_install_hint(serve_env, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mofrr serve needs the web extra") and "pip install 'mofrr[web]'" in err
    assert err.count("\n") == 1
    assert list(serve_env.iterdir()) == []  # the temporary folder is gone


def test_a_taken_port_is_a_one_line_error(serve_env, capsys):
    pytest.importorskip("gradio", reason="needs the web extra: pip install 'mofrr[web]'")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --host 127.0.0.1 --port {port}: cannot listen there") and err.count("\n") == 1
    assert list(serve_env.iterdir()) == []


def test_mofrr_does_not_import_gradio():
    code = ("import sys; from mofrr_core.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('gradio', 'fastapi', 'uvicorn', 'selenium') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout
    assert out.strip() == "[]"
