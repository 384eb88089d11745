"""The path a Colab reader takes: the library's wheel, installed outside the clone, runs a chapter.

On Colab the first cell installs ``convlstm_lib`` from the repository, and the chapter's files
(checkpoints, logs) are not on disk: ``book_file`` downloads them from the repository's raw
address and checks their SHA-256. This test does the same on this machine, with no network:

1. builds the library's wheel from a copy of its sources (nothing is written into the clone);
2. installs it, with the ``book`` extras, into a new virtual environment in a temporary folder
   that reuses the packages of the environment running the tests (torch is not downloaded
   again), with ``--no-index``, so that any requirement that is not already met fails;
3. serves copies of the registered files from 127.0.0.1 and points ``$CONVLSTM_BOOK_URL`` at
   them, the address that stands in for ``raw.githubusercontent.com``;
4. runs chapter 07, which loads committed checkpoints, with nbclient in that environment, in a
   folder outside the clone, and checks that it ran the installed wheel, found no clone, and
   downloaded every file it loaded.

Marked ``colab`` (``make colab``; part of ``make test``); about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.colab

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "07_forecasting_many_frames.ipynb"
REGISTRY = ROOT / "convlstm_lib" / "book_files.sha256"
CHAPTER_TIMEOUT_S = 600  # per cell, as in _config.yml; the chapter takes about 40 s

# Appended to the chapter: which library ran, and whether it saw a clone.
PROBE = """\
import json, sys
import convlstm_lib
from convlstm_lib.files import _clone_root
print(json.dumps({"library": convlstm_lib.__file__, "prefix": sys.prefix,
                  "clone": str(_clone_root(None))}))"""

# Run inside the new environment: the chapter under nbclient, the probe's output written out.
RUN_CHAPTER = """\
import sys
import nbformat
from nbclient import NotebookClient

chapter, probe, out, timeout = sys.argv[1:5]
notebook = nbformat.read(chapter, as_version=4)
notebook.cells.append(nbformat.v4.new_code_cell(probe))
client = NotebookClient(notebook, timeout=int(timeout), kernel_name="python3")
client.execute(cwd=".")
nbformat.write(notebook, out)
"""


def _registered() -> list[str]:
    lines = REGISTRY.read_text().splitlines()
    return [line.split("  ", 1)[1] for line in lines if line and not line.startswith("#")]


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """Copies of the registered files at their repository paths, served from 127.0.0.1."""
    folder = tmp_path / "served"
    for path in _registered():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, folder / path)
    requests: list[str] = []

    class Counting(_Handler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Counting, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, (
        f"expected {' '.join(map(str, command))} to succeed, got exit status "
        f"{done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done


def _wheel(tmp_path: Path) -> Path:
    """The library's wheel, built from a copy of what the wheel is made of."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(
        ROOT / "convlstm_lib", source / "convlstm_lib", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = tmp_path / "dist"
    # No build isolation: the setuptools already installed builds it, with no download.
    _run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(dist), str(source)),
        ]
    )
    (wheel,) = dist.glob("convlstm_lib-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "convlstm_lib/book_files.sha256" in archive.namelist()
    return wheel


def _environment(tmp_path: Path) -> Path:
    """A new virtual environment that sees this environment's packages, after its own.

    ``venv --system-site-packages`` would not do: made from a virtual environment's python, a
    venv is based on the interpreter beneath it, whose site-packages lack the book's packages.
    A ``.pth`` line adds this environment's site-packages instead; the ``.pth`` files there
    are not run, so the editable install of the clone's library does not come along.
    """
    env = tmp_path / "colab-env"
    # Without pip (this environment's pip installs into it): the setuptools that ensurepip
    # would bring is older than the one torch requires, and would shadow the reused one.
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)])
    python = env / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    Path(site.stdout.strip(), "reused-packages.pth").write_text(
        sysconfig.get_path("purelib") + "\n"
    )
    return python


def _clean_environ(tmp_path: Path, book_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JUPYTER"))}
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        env.pop(name, None)
    env.update(
        NO_PROXY="127.0.0.1",
        CONVLSTM_BOOK_URL=book_url,
        CONVLSTM_BOOK_CACHE=str(tmp_path / "cache"),
        # No kernel or setting of the user's own Jupyter set-up.
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        MPLCONFIGDIR=str(tmp_path / "matplotlib"),
    )
    return env


def test_chapter_runs_from_the_wheel_with_downloaded_files(tmp_path, served):
    url, requests = served
    wheel = _wheel(tmp_path)
    python = _environment(tmp_path)
    env = _clean_environ(tmp_path, url)
    _run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"),
            *("--no-index", f"{wheel}[book]"),
        ],
        env=env,
    )
    installed = _run(
        [str(python), "-c", "import convlstm_lib; print(convlstm_lib.__file__)"],
        cwd=tmp_path,
        env=env,
    ).stdout.strip()
    assert Path(installed).is_relative_to(python.parents[1]), installed

    workdir = tmp_path / "reader"  # outside the clone: no _toc.yml above the library
    workdir.mkdir()
    out = tmp_path / "chapter-07.ipynb"
    _run(
        [str(python), "-c", RUN_CHAPTER, str(CHAPTER), PROBE, str(out), str(CHAPTER_TIMEOUT_S)],
        cwd=workdir,
        env=env,
    )
    notebook = json.loads(out.read_text())
    errors = [
        f"{output['ename']}: {output['evalue']}"
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
        if output["output_type"] == "error"
    ]
    assert not errors
    printed = "".join(notebook["cells"][-1]["outputs"][0]["text"])
    probe = json.loads(printed)
    assert Path(probe["library"]).is_relative_to(python.parents[1]), probe
    assert probe["clone"] == "None", probe
    # Every file chapter 07 loaded came over HTTP, each once, and was cached where it was told;
    # its checkpoints are the registered ones the chapter names.
    loaded = [path.removeprefix("/") for path in requests]
    assert loaded and len(loaded) == len(set(loaded)), requests
    assert set(loaded) <= set(_registered())
    source = CHAPTER.read_text()
    assert {p for p in loaded if p.endswith(".pt")} == {
        p for p in _registered() if p.endswith(".pt") and Path(p).stem in source
    }
    for path in loaded:
        assert (tmp_path / "cache" / path).is_file(), path
