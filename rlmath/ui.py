"""``rlmath ui``: the mlflow UI over the local run store, on loopback only.

Training writes to ``sqlite:///<output_dir>/mlflow.db`` with artifacts in ``<output_dir>/mlartifacts``
(see :mod:`rlmath.tracking`); this starts ``mlflow server`` over exactly that store, bound to
127.0.0.1 (a run store holds prompts and adapters: it should not be on the network by default), and
prints the URL. Tests use :func:`start_server` to get a real server on a free port.

mlflow 3's UI has a global GenAI / Model-training switch that overrides the experiment's
``mlflow.experimentKind`` tag and defaults to GenAI (traces, latency, an AI-issues pop-up). The URL
printed here carries ``workflowType=machine_learning`` and points at the training experiment, so the
first page a user sees is the runs table; the app keeps the parameter while navigating.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Server:
    """A running ``mlflow server`` child process and where to reach it."""

    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        """Terminate the server (its uvicorn workers are its children, in its own process group)."""
        import os
        import signal

        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_command(store_dir: Path, host: str, port: int) -> list[str]:
    """The ``mlflow server`` command line for a run store folder.

    Artifacts of runs created through the server are proxied (``--artifacts-destination``) into the
    same ``mlartifacts`` folder local runs use, so clients need no filesystem access to log.

    >>> server_command(Path("/r"), "127.0.0.1", 5000)[4:8]
    ['--backend-store-uri', 'sqlite:////r/mlflow.db', '--artifacts-destination', 'file:///r/mlartifacts']
    """
    store = store_dir.resolve()
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination", (store / "mlartifacts").as_uri(), "--host", host, "--port", str(port),
            "--workers", "1"]


def start_server(store_dir: Path, *, host: str = "127.0.0.1", port: int | None = None, timeout: float = 120.0,
                 log: Path | None = None) -> Server:
    """Start ``mlflow server`` over ``store_dir`` and wait until it answers ``/health``."""
    store_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    output = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(server_command(store_dir, host, port), stdout=output, stderr=subprocess.STDOUT,
                               start_new_session=True)
    server = Server(process, f"http://{host}:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with code {process.returncode}"
                               + (f"; see {log}" if log else ""))
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"mlflow server did not answer on {server.url} within {timeout:.0f}s")


TRAINING_VIEW = "workflowType=machine_learning"


def training_view_url(server_url: str, experiment_id: str | None = None) -> str:
    """The UI URL on the model-training pages: the experiment's runs, or the experiment list.

    >>> training_view_url("http://127.0.0.1:5000", "3")
    'http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning'
    """
    page = f"/experiments/{experiment_id}" if experiment_id else "/experiments"
    return f"{server_url}/#{page}?{TRAINING_VIEW}"


def experiment_id(server_url: str, name: str | None) -> str | None:
    """The id of experiment ``name`` on the server, or None when it does not exist (yet)."""
    if not name:
        return None
    import mlflow

    experiment = mlflow.MlflowClient(server_url).get_experiment_by_name(name)
    return experiment.experiment_id if experiment else None


def serve(store_dir: Path, *, host: str, port: int, console, experiment: str | None = None) -> None:
    """Foreground server for ``rlmath ui``: print the URL (on ``experiment``), run until Ctrl-C."""
    import signal

    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the server too, not only Ctrl-C
    console.print(f"starting mlflow server over {store_dir.resolve()} …")
    server = start_server(store_dir, host=host, port=port)
    url = training_view_url(server.url, experiment_id(server.url, experiment))
    console.print(f"[green]mlflow UI:[/green] {url}   (Ctrl-C to stop)", soft_wrap=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
