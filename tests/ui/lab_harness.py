"""JupyterLab on a loopback port and headless Chromium (Debian's, through chromedriver) for the
browser tests: throwaway settings, workspaces and runtime folders, and both process trees always
stopped, even when a test fails."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000"]  # fmt: skip
# No announcements or update checks: nothing may reach outside the machine.
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                {"fetchNews": "false", "checkForUpdates": False}}  # fmt: skip
#: One row per Run All and per slider move, printed at the end of the run (tests/ui/conftest.py).
TIMINGS: list[dict] = []
#: SEVERE browser-console entries let through as harmless, with the reason (printed at the end too).
FILTERED_CONSOLE: list[str] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_tree(pid: int | None, timeout: float = 10) -> None:
    """SIGTERM ``pid`` and all its descendants (kernels, renderer processes), then SIGKILL the
    survivors. Descendants are listed first: once the root is gone they cannot be found."""
    if pid is None:
        return
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for k in self.api("kernels"):
            self.api(f"kernels/{k['id']}", method="DELETE")


@contextmanager
def jupyter_lab(root: Path, scratch: Path, env: dict[str, str]) -> Iterator[Lab]:
    """``jupyter lab`` serving ``root`` on 127.0.0.1 with a token; ``env`` is added to the
    server's (and so the kernels') environment."""
    port, token = free_port(), secrets.token_hex(16)
    settings, workspaces = scratch / "lab-settings", scratch / "lab-workspaces"
    for name, value in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    workspaces.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(scratch / "jupyter-runtime"),
                    JUPYTER_CONFIG_DIR=str(scratch / "jupyter-config"), **env)  # fmt: skip
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workspaces}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]  # fmt: skip
    if os.geteuid() == 0:  # CI containers run as root; the server refuses that unless told
        cmd.append("--allow-root")
    log = scratch / "jupyter-lab.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, env=full_env, cwd=root, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    lab.api("status")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"jupyter lab did not answer in 90 s:\n{log.read_text()[-3000:]}") from None
                    time.sleep(0.5)
            yield lab
        finally:
            kill_tree(proc.pid)


@contextmanager
def chromium(scratch: Path) -> Iterator[object]:
    """A Selenium driver for Debian's headless Chromium, its console log recorded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={scratch / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver",
                      log_output=str(scratch / "chromedriver.log"))  # fmt: skip
    driver = webdriver.Chrome(service=service, options=options)
    pid = service.process.pid if service.process else None
    try:
        yield driver
    finally:
        try:
            tree = [*psutil.Process(pid).children(recursive=True)] if pid else []
        except psutil.NoSuchProcess:
            tree = []
        try:
            driver.quit()
        except Exception:  # noqa: BLE001 - whatever happened, the processes below still go
            pass
        kill_tree(pid)
        for p in tree:
            kill_tree(p.pid)
