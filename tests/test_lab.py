"""`make lab`: JupyterLab on the project, with the project's kernel, as a user starts it (no browser, on loopback)."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO_ROOT, command_env

pytestmark = pytest.mark.slow
TOKEN = "mlops-nb-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(port: int, path: str, method: str = "GET", body: dict | None = None) -> dict | list:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if text else {}


def wait_for_server(process: subprocess.Popen, port: int, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout  # the first `make lab` installs JupyterLab
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make lab exited {process.returncode}\n{log.read_text()[-4000:]}")
        try:
            api(port, "status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    pytest.fail(f"JupyterLab did not answer on port {port} within {timeout} s\n{log.read_text()[-4000:]}")


def run_in_kernel(connection_file: Path, code: str) -> str:
    """Run `code` in the kernel behind `connection_file`, as a notebook client does; its printed output."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(connection_file))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        printed: list[str] = []

        def collect(message: dict) -> None:
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])

        reply = client.execute_interactive(code, output_hook=collect, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(printed)
    finally:
        client.stop_channels()


def test_make_lab_serves_the_project_with_its_kernel(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "lab.log"
    env = command_env(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces")
    )
    arguments = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={TOKEN}"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "lab", f"LAB_ARGS={arguments}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_server(process, port, log)
        specs = api(port, "kernelspecs")
        default = specs["kernelspecs"][specs["default"]]["spec"]
        assert default["display_name"] == "Python 3 (mlops_nb)"
        assert Path(default["argv"][0]).resolve() == (REPO_ROOT / ".venv" / "bin" / "python").resolve()
        # The server's root is the project: the pipeline notebooks are where a user looks for them.
        listing = api(port, "contents/nbs/pipelines")
        assert {"ingest.ipynb", "train.ipynb"} <= {item["name"] for item in listing["content"]}
        # A kernel the server starts runs the project's Python, which imports the project's library.
        kernel = api(port, "kernels", "POST", {"name": specs["default"]})
        printed = run_in_kernel(
            tmp_path / "runtime" / f"kernel-{kernel['id']}.json",
            "import sys, mlops_nb; print(sys.prefix); print(mlops_nb.__file__)",
        )
        api(port, f"kernels/{kernel['id']}", "DELETE")
        prefix, library = printed.split()
        assert Path(prefix).resolve() == (REPO_ROOT / ".venv").resolve()
        assert Path(library).resolve() == (REPO_ROOT / "mlops_nb" / "__init__.py").resolve()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
