"""Repository-level checks of the chapters in notebooks/, without running them.

Running them is nbval's job (``make notebooks``) and the book build's. These tests check what
is committed: no outputs, the opening every chapter shares (an H1 title and a subtitle, then
the Colab cell, then imports with a seed), and a place in the table of contents.
"""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml
from sphinx_external_toc.parsing import parse_toc_yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# The first code cell of every chapter: on Colab it installs the library, elsewhere it does
# nothing. The repository's address and branch are _config.yml's (tools/set_repository.py
# writes them; this test reads _config.yml on its own).
COLAB_CELL = """\
# On Colab, install the book's library first; elsewhere this cell does nothing.
import subprocess
import sys

if "google.colab" in sys.modules:
    REPOSITORY = "{url}"
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, f"convlstm_lib @ git+{{REPOSITORY}}@{branch}"], check=True)"""


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _repository() -> dict[str, str]:
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    assert repository.get("url") and repository.get("branch"), (
        f"_config.yml: expected repository.url and repository.branch, got {repository}"
    )
    return repository


notebook_params = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)


@notebook_params
def test_is_valid_nbformat(path: Path) -> None:
    nbformat.validate(_read(path))


@notebook_params
def test_committed_without_outputs(path: Path) -> None:
    notebook = _read(path)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: expected no outputs, got some in cells {dirty}"
    assert "widgets" not in notebook.metadata, (
        f"{path.name}: expected no saved widget state in the metadata, got some"
    )


@notebook_params
def test_kernel_is_python3(path: Path) -> None:
    kernelspec = _read(path).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", (
        f"{path.name}: expected kernelspec python3, got {kernelspec.get('name')!r}"
    )


@notebook_params
def test_opens_with_title_and_subtitle(path: Path) -> None:
    first = _read(path).cells[0]
    lines = [line for line in first.source.splitlines() if line.strip()]
    assert first.cell_type == "markdown", (
        f"{path.name}: expected a markdown first cell, got {first.cell_type}"
    )
    assert lines and re.match(r"# \S", lines[0]), (
        f"{path.name}: expected an H1 title ('# Title') first, got {lines[:1]}"
    )
    assert len(lines) > 1 and not lines[1].startswith("#"), (
        f"{path.name}: expected a one-line subtitle under the title, got {lines[1:2]}"
    )


@notebook_params
def test_first_code_cell_installs_on_colab(path: Path) -> None:
    code = _code_cells(_read(path))
    expected = COLAB_CELL.format(**_repository())
    assert code and code[0].source == expected, (
        f"{path.name}: expected the Colab cell first:\n{expected}\ngot:\n"
        f"{code[0].source if code else None}"
    )


def test_colab_cell_pip_installs_the_library_from_the_configured_branch(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: calls.append((command, kw)))
    repository = _repository()
    exec(COLAB_CELL.format(**repository), {})
    requirement = f"convlstm_lib @ git+{repository['url']}@{repository['branch']}"
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    assert calls == [([*pip, requirement], {"check": True})]
    # Off Colab it does nothing.
    monkeypatch.delitem(sys.modules, "google.colab")
    exec(COLAB_CELL.format(**repository), {})
    assert len(calls) == 1


def test_colab_cell_fits_the_sites_code_blocks():
    cell = COLAB_CELL.format(**_repository())
    assert max(len(line) for line in cell.splitlines()) <= 80, cell


@notebook_params
def test_second_code_cell_seeds(path: Path) -> None:
    code = _code_cells(_read(path))
    assert len(code) > 1 and "torch.manual_seed(" in code[1].source, (
        f"{path.name}: expected the imports and torch.manual_seed(...) in the second code cell"
    )


@notebook_params
def test_is_in_the_table_of_contents(path: Path) -> None:
    # only_build_toc_files: a chapter missing from _toc.yml is silently left out of the book.
    docnames = set(parse_toc_yaml(ROOT / "_toc.yml"))
    docname = path.relative_to(ROOT).with_suffix("").as_posix()
    assert docname in docnames, f"_toc.yml: expected an entry for {docname}, got none"


def _chapters_in_reading_order() -> list[str]:
    """The notebooks' file names in the order of _toc.yml."""
    docnames = list(parse_toc_yaml(ROOT / "_toc.yml"))
    return [Path(name).name + ".ipynb" for name in docnames if name.startswith("notebooks/")]


def _heading(cell: nbformat.NotebookNode) -> str | None:
    first = cell.source.lstrip().splitlines()[:1] if cell.cell_type == "markdown" else []
    return first[0] if first and first[0].startswith("## ") else None


@notebook_params
def test_ends_with_what_we_learned_then_what_comes_next(path: Path) -> None:
    cells = _read(path).cells
    headings = [_heading(cell) for cell in cells]
    assert headings[-1] == "## What comes next", (
        f"{path.name}: expected the last cell to be '## What comes next', got {headings[-1]!r}"
    )
    assert "## What we learned" in headings, (
        f"{path.name}: expected a '## What we learned' cell, got none"
    )
    learned = headings.index("## What we learned")
    # Between the two, only the chapter's exercises, in a section of their own.
    between = headings[learned + 1 : -1]
    assert not between or (between[0] == "## Exercises" and not any(between[1:])), (
        f"{path.name}: expected only '## Exercises' between what we learned and what comes "
        f"next, got {[heading or '(text)' for heading in between]}"
    )
    order = _chapters_in_reading_order()
    following = order[order.index(path.name) + 1 :]
    links = re.findall(r"\]\(([^)#\s]+)", cells[-1].source)
    if following:
        assert following[0] in links, (
            f"{path.name}: expected what comes next to link {following[0]}, got {links}"
        )
    else:
        assert links, f"{path.name}: expected what comes next to point somewhere, got no link"


# Folded on the site (Jupyter Book's tags): the reader sees the output, not the code.
FOLDED = {"hide-input", "hide-cell", "remove-input", "remove-cell"}
# "No cell of more than about 25 lines stays visible": blank lines do not count.
VISIBLE_LINES = 25


@notebook_params
def test_visible_code_cells_are_short(path: Path) -> None:
    long = []
    for index, cell in enumerate(_code_cells(_read(path))):
        if FOLDED & set(cell.metadata.get("tags", [])) or index < 2:
            continue  # the Colab cell and the imports are the same plumbing in every chapter
        lines = [line for line in cell.source.splitlines() if line.strip()]
        if len(lines) > VISIBLE_LINES:
            long.append(f"code cell {index}: {len(lines)} lines: {lines[0][:60]}")
    assert not long, (
        f"{path.name}: expected visible code cells of at most {VISIBLE_LINES} lines (fold figure "
        "code with the hide-input tag, split the rest), got\n" + "\n".join(long)
    )
