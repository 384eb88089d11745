"""A notebook in JupyterLab, as a reader runs it with `make lab` or on Binder, in Chromium.

The test starts JupyterLab on 127.0.0.1 with a token, opens a notebook, runs all its cells from
the Run menu, and checks that its widgets render and respond and that its tqdm bar renders. The
only chapter with widgets (05) trains for minutes, so the notebook is a small one written to a
temporary folder: a slider that a live kernel answers (it recomputes a ConvLSTMCell's output
shape) and that ``jslink`` ties to a number field in the browser, a ``tqdm.auto`` loop, and a
question from ``convlstm_lib.quiz`` answered wrong then right. It runs in the same JupyterLab,
with the same widget extension and kernel, as the chapters.

Every request for another host is blocked. The server is shut down after the test, whether it
passed or not. Environment: ``CHROMIUM`` as for tests/test_site.py.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_TIMEOUT_S = 90  # JupyterLab on a shared 2-core machine
TIMEOUT_MS = 90_000  # JupyterLab's first load and a kernel's start
STEP_TIMEOUT_MS = 20_000  # a widget's round trip through the kernel
NOTEBOOK = "widgets_in_lab.ipynb"
SCREENSHOT = Path(__file__).resolve().parents[1] / "_build" / "screenshots" / "jupyterlab.png"
STEPS = 20  # the tqdm loop's length, shown as "20/20" when it is done

CELLS = [
    """\
import ipywidgets as widgets
import torch
from IPython.display import display

from convlstm_lib import ConvLSTMCell

torch.manual_seed(0)
frame = torch.randn(1, 1, 8, 8)  # (B, C_in, H, W)""",
    """\
hidden = widgets.IntSlider(value=2, min=1, max=8, description="C_hid")
linked = widgets.IntText(description="linked")
widgets.jslink((hidden, "value"), (linked, "value"))  # in the browser, no kernel involved
shape = widgets.Label()


def show(change=None):  # in the kernel: moving the slider runs the library again
    h, _ = ConvLSTMCell(1, hidden.value, 3)(frame)
    shape.value = f"h: {tuple(h.shape)}"


hidden.observe(show, names="value")
show()
display(widgets.VBox([hidden, linked, shape]))""",
    f"""\
import time

from tqdm.auto import tqdm

for _ in tqdm(range({STEPS}), desc="steps"):
    time.sleep(0.01)""",
    # A chapter's question: its script runs in JupyterLab's output area, as on the site.
    """\
from convlstm_lib.quiz import ask, number

ask(number("How many channels has h?", hidden.value, right="Right: C_hid."))""",
]


@dataclass
class Lab:
    url: str  # http://127.0.0.1:<port>/
    token: str
    folder: Path  # JupyterLab's root: the notebook is there


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(url: str, token: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, method=method, headers={"Authorization": f"token {token}"}
    )
    # Never through a proxy named in the environment: the server is on this machine.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return response.status, response.read()


def _write_notebook(folder: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, folder / NOTEBOOK)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on a free port of 127.0.0.1, shut down afterwards whatever the outcome."""
    folder = tmp_path / "lab"
    folder.mkdir()
    _write_notebook(folder)
    token, port = secrets.token_hex(24), _free_port()
    env = dict(os.environ)
    # Nothing of the user's Jupyter set-up (settings, workspaces, kernels) leaks in or out.
    for name, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
    ]:
        env[name] = str(tmp_path / sub)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        env.pop(name, None)
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={folder}",
            # Server-side requests for news and updates would go to the internet.
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            # CI containers often run as root, which Jupyter refuses without this.
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its kernels in its process group, to end them with it
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{_tail(tmp_path)}")
            try:
                if _request(f"{url}api/status", token)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"JupyterLab did not answer within {START_TIMEOUT_S} s:\n{_tail(tmp_path)}"
                )
            time.sleep(0.5)
        yield Lab(url, token, folder)
    finally:
        _shut_down(server, url, token)
        log.close()


def _tail(tmp_path: Path, lines: int = 40) -> str:
    return "\n".join((tmp_path / "jupyterlab.log").read_text().splitlines()[-lines:])


def _shut_down(server: subprocess.Popen, url: str, token: str) -> None:
    """Ask the server to stop (it shuts its kernels down too); then insist, by its group."""
    if server.poll() is None:
        try:
            _request(f"{url}api/shutdown", token, method="POST")
            server.wait(timeout=20)
        except (urllib.error.URLError, ConnectionError, TimeoutError, subprocess.TimeoutExpired):
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)  # the group this fixture started, and nothing else
        except ProcessLookupError:
            break
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue
    server.wait()


@pytest.fixture
def chromium_page(lab: Lab) -> Iterator[tuple[object, list[str]]]:
    """A Chromium page that may reach the server only; the list collects blocked requests."""
    if not CHROMIUM.is_file():
        pytest.fail(f"test_lab: expected Chromium at {CHROMIUM}, got none: run `make chromium`")
    blocked: list[str] = []
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)

        def route(route: object) -> None:
            url = route.request.url
            if url.startswith(
                (lab.url, f"ws://127.0.0.1:{lab.url.split(':')[-1]}", "data:", "blob:")
            ):
                route.continue_()
            else:
                blocked.append(f"{route.request.resource_type} {url}")
                route.abort("blockedbyclient")

        context.route("**/*", route)
        page = context.new_page()
        try:
            yield page, blocked
        finally:
            # What the reader would have seen, passed or failed: look at it.
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOT, full_page=True)
            context.close()
            browser.close()


def _wait_for_connected_kernel(lab: Lab, page: object) -> None:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        kernels = json.loads(_request(f"{lab.url}api/kernels", lab.token)[1])
        if any(k["connections"] > 0 and k["execution_state"] == "idle" for k in kernels):
            return
        # Not time.sleep: the route handler runs in this thread, while Playwright waits only.
        page.wait_for_timeout(500)
    pytest.fail(f"expected the notebook's kernel to start and connect, got {kernels}")


def _menu(page: object, menu: str, item: str) -> None:
    page.locator(f'.lm-MenuBar-itemLabel:text-is("{menu}")').click()
    page.locator(f'.lm-Menu-itemLabel:text-is("{item}")').click()


def _saved_outputs(lab: Lab) -> list[dict]:
    notebook = json.loads((lab.folder / NOTEBOOK).read_text())
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_widgets_and_tqdm_work_in_jupyterlab(lab: Lab, chromium_page) -> None:
    page, blocked = chromium_page
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?token={lab.token}", wait_until="load")
    # Cells are added to the page one by one as the notebook opens.
    page.wait_for_function(
        "(count) => document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell').length === count",
        arg=len(CELLS),
    )
    # Run All before the page's connection to the kernel is up would do nothing at all; the
    # server counts that connection.
    _wait_for_connected_kernel(lab, page)
    page.locator('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()

    _menu(page, "Run", "Run All Cells")
    prompts = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt")
    page.wait_for_function(
        """(count) => {
          const prompts = document.querySelectorAll(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt");
          return prompts.length === count
            && [...prompts].every((prompt) => /\\[\\d+\\]/.test(prompt.textContent));
        }""",
        arg=len(CELLS),
        timeout=TIMEOUT_MS,
    )
    assert prompts.count() == len(CELLS)
    panel = page.locator(".jp-NotebookPanel").first

    # Rendered, not a placeholder or an error: the slider, the linked field, the label, the bar.
    slider = panel.locator(".widget-slider .noUi-handle")
    slider.wait_for()
    number = panel.locator(".widget-text input")
    # The Label is a child of the box; the descriptions are <label>s inside their controls.
    label = panel.locator(".jp-OutputArea-output .widget-vbox > .widget-label")
    bar = panel.locator(".widget-hprogress")
    bar.wait_for()
    page.wait_for_function(
        "(text) => [...document.querySelectorAll('.widget-html-content')]"
        ".some((node) => node.textContent.includes(text))",
        arg=f"{STEPS}/{STEPS}",
        timeout=STEP_TIMEOUT_MS,
    )
    text = panel.inner_text()
    for failure in ("Loading widget...", "Error displaying widget", "not found"):
        assert failure not in text, f"expected every widget to render, got {failure!r}:\n{text}"
    assert label.inner_text() == "h: (1, 2, 8, 8)"
    assert number.input_value() == "2"

    # A key press moves the slider: jslink updates the field in the browser, the kernel the label.
    slider.focus()
    slider.press("ArrowRight")
    page.wait_for_function(
        "(element) => element.textContent === 'h: (1, 3, 8, 8)'",
        arg=label.element_handle(),
        timeout=STEP_TIMEOUT_MS,
    )
    assert number.input_value() == "3"

    # The question renders from its output and answers a typed number (the slider said 2
    # when the cell ran).
    field = panel.locator(".Quiz input.Input-text")
    field.wait_for(timeout=STEP_TIMEOUT_MS)
    feedback = panel.locator(".Quiz .Feedback")
    for typed, verdict in (("5", "incorrect"), ("2", "correct")):
        field.click()
        field.press_sequentially(typed)
        field.press("Enter")
        assert verdict in (feedback.get_attribute("class") or "").split(), (
            f"typed {typed}: expected {verdict}, got {feedback.inner_text()!r}"
        )
    assert feedback.inner_text() == "Right: C_hid."

    # No cell raised: the saved notebook has an execution count and no error in every cell.
    _menu(page, "File", "Save Notebook")
    page.wait_for_function(
        "() => !document.querySelector('.jp-NotebookPanel .jp-mod-dirty, .jp-mod-dirty')",
        timeout=STEP_TIMEOUT_MS,
    )
    saved = _saved_outputs(lab)
    assert [cell["execution_count"] is not None for cell in saved] == [True] * len(CELLS)
    errors = [
        f"{output['ename']}: {output['evalue']}"
        for cell in saved
        for output in cell["outputs"]
        if output["output_type"] == "error"
    ]
    assert not errors, f"expected no cell to raise, got {errors}"
    assert not blocked, "expected no request to another host, got:\n" + "\n".join(blocked)
