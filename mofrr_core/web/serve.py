"""Start a local web page to restore photos: drop a photo, see each face the router found (boxes, probability
per type against the threshold, estimated degrees, experts run), compare before/after with a slider and the
difference heatmap, and download the restored PNG and the forensic report (the same JSON and PNGs as
`mofrr restore --report`, zipped). Settings on the page: whole photo or --aligned crop, DDIM steps, seed,
experts.

Needs the web extra: pip install 'mofrr[web]'. The page listens on 127.0.0.1 (this machine only) unless
--host says otherwise, and works offline: no CDN, no web fonts, no analytics (the browser is told to load
nothing but the server's own files). Uploads and results live in a temporary folder that is deleted when the
server stops; nothing is written next to your files.

exit codes: 0 stopped (Ctrl-C or SIGTERM), 2 setup error (gradio not installed, port taken, broken registry
or weights, unavailable device).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

from mofrr_core.restore import EXIT_OK, EXIT_USAGE, check_experts_option, terminate_as_interrupt

WEB_HINT = "pip install 'mofrr[web]'"
GRACEFUL_SHUTDOWN_S = 3  # seconds open connections (an open page's event stream) get when the server stops
OFFLINE_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",  # no usage reports, no version check
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
}


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535 (0: any free port), got {value}")
    return value


def _megabytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of megabytes, got {text!r}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 shares the page "
                             "with your network, without any login)")
    parser.add_argument("--port", type=_port, default=7860, help="port to listen on (default 7860; 0: any free port)")
    parser.add_argument("--aligned", action="store_true",
                        help="start with the 'aligned face crop' toggle on (it can be changed on the page)")
    parser.add_argument("--max-upload-mb", type=_megabytes, default=200, metavar="MB",
                        help="largest upload accepted (default 200 MB; pixel limits as in `mofrr restore`)")
    source = parser.add_argument_group("which pipeline")
    source.add_argument("--registry", type=Path, help="registry.yaml to build the pipeline from (default: packaged)")
    source.add_argument("--experts", help="comma-separated expert names offered on the page (default: all)")
    source.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if available)")


def import_web_extra() -> None:
    """Import gradio (with analytics off); ``ImportError`` naming the extra to install if it is missing."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    try:
        import fastapi  # noqa: F401
        import gradio  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise ImportError(f"mofrr serve needs the web extra ({error.name or error} is missing): {WEB_HINT}") from None


def make_restorer(args: argparse.Namespace, workdir: Path):
    """The pipeline (the same ``load_pipeline`` as ``mofrr restore``), the face detector and the work folder."""
    from mofrr_core.inputs import check_device
    from mofrr_core.pipeline import load_pipeline
    from mofrr_core.restore import NoLandmarkProviderError, face_detector
    from mofrr_core.web.jobs import PipelineCache, Restorer

    check_experts_option(args.experts)
    device = check_device(args.device)
    print("loading the pipeline ...", flush=True)
    pipeline = load_pipeline(args.registry, device, args.experts, label="--registry")
    pipelines = PipelineCache(lambda names: load_pipeline(args.registry, device, list(names), label="--registry"),
                              pipeline)
    try:
        detector, detector_error = face_detector(), None
    except NoLandmarkProviderError as error:
        detector, detector_error = None, str(error)
        print(f"warning: {error}; only aligned face crops can be restored", file=sys.stderr)
    return Restorer(pipelines, workdir / "jobs", detector, detector_error)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``port`` 0: a free one); one-line ``OSError`` naming both."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise OSError(f"--host {host} --port {port}: cannot listen there ({reason}); "
                      "choose another --port (0: any free port)") from None


def page_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def web_server(args: argparse.Namespace, restorer, workdir: Path, sock: socket.socket):
    """The uvicorn server of the page (the Gradio app inside a FastAPI app behind the offline middleware)."""
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    from mofrr_core.web.app import build_app
    from mofrr_core.web.offline import OfflinePageMiddleware

    aligned = args.aligned or restorer.detector is None
    blocks = build_app(restorer, aligned=aligned, steps=restorer.pipelines.default.num_inference_steps)
    server_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    server_app.add_middleware(OfflinePageMiddleware)
    host, port = sock.getsockname()[:2]
    with contextlib.redirect_stdout(io.StringIO()):  # gradio 5.50's mount_gradio_app prints "new <path>"
        server_app = gr.mount_gradio_app(server_app, blocks, path="", server_name=host, server_port=port,
                                         show_api=False, allowed_paths=[str(workdir)], ssr_mode=False,
                                         max_file_size=f"{args.max_upload_mb}mb")
    log_level = "info" if getattr(args, "verbose", False) else "warning"
    return uvicorn.Server(uvicorn.Config(server_app, log_level=log_level, lifespan="on",
                                         timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="mofrr-serve-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # also when something below exits early
    try:
        with terminate_as_interrupt():
            code = serve(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if code == EXIT_OK:
        print(f"stopped; removed {workdir}", flush=True)
    return code


def serve(args: argparse.Namespace, workdir: Path) -> int:
    try:
        os.environ["GRADIO_TEMP_DIR"] = str(workdir / "gradio")  # uploads, Gradio's copies; read on import
        import_web_extra()
        sock = listen(args.host, args.port)
        restorer = make_restorer(args, workdir)
        server = web_server(args, restorer, workdir, sock)
    except Exception as error:  # noqa: BLE001 - any failure before serving is a setup error
        if getattr(args, "verbose", False):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {str(message).strip() or type(error).__name__}", file=sys.stderr)
        return EXIT_USAGE
    running = ServerThread(server, sock)
    try:
        if not running.start():
            print("error: the web server did not start (run 'mofrr -v serve ...' for details)", file=sys.stderr)
            return EXIT_USAGE
        print(f"MoFRR is running on {page_url(sock)} (Ctrl-C to stop)", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: --host {args.host}: anyone who can reach this machine can use the page", file=sys.stderr)
        running.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        sock.close()
    return EXIT_OK


class ServerThread:
    """The uvicorn server in a thread (the main thread keeps Ctrl-C and SIGTERM). ``done`` is set when the
    server has finished: ``Thread.join`` may return too early once a ``KeyboardInterrupt`` interrupted it."""

    def __init__(self, server, sock: socket.socket) -> None:
        self.server = server
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(sock,), name="mofrr-serve", daemon=True)

    def _run(self, sock: socket.socket) -> None:
        try:
            self.server.run(sockets=[sock])
        finally:
            self.done.set()

    def start(self) -> bool:
        """Start serving; ``False`` if the server stopped before it was ready."""
        self.thread.start()
        while not self.server.started and not self.done.wait(0.05):
            pass
        return bool(self.server.started)

    def wait(self) -> None:
        while not self.done.wait(0.5):
            pass

    def stop(self) -> None:
        """Let the server finish (open connections get ``GRACEFUL_SHUTDOWN_S``); a second Ctrl-C cuts it short."""
        self.server.should_exit = True
        try:
            self.wait()
        except KeyboardInterrupt:
            self.server.force_exit = True
            self.wait()
