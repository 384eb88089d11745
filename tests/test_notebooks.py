"""Repository-level checks of the chapters in notebooks/, without running them.

Running them is nbval's job (``make notebooks``) and the book build's. These tests check what
is committed: no outputs, the opening every chapter shares (an H1 title and a subtitle, then
the Colab cell, then imports with a seed), and a place in the table of contents.
"""

from __future__ import annotations

import ast
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
    library = f"convlstm_lib[quiz] @ git+{{REPOSITORY}}@{branch}"
    subprocess.run([*pip, library], check=True)"""


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
    requirement = f"convlstm_lib[quiz] @ git+{repository['url']}@{repository['branch']}"
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


# Every chapter's exercises (sphinx-exercise): "```{exercise} Title" with ":label: exNN-...",
# each followed by its solution, gated around the code cells that solve it and folded on the
# site until the reader opens it. The build and nbval run the solutions; each ends in an assert.
EXERCISE = re.compile(r"^`{3,}\{exercise\}[^\n]*\n:label: (\S+)$", re.M)
SOLUTION_START = re.compile(r"^(`{3,})\{solution-start\} (\S+)\n:class: dropdown\n\1$", re.M)
SOLUTION_END = re.compile(r"^(`{3,})\{solution-end\}\n\1$", re.M)
EXERCISES_PER_CHAPTER = range(3, 6)


def _section(cells: list[nbformat.NotebookNode], heading: str) -> list[nbformat.NotebookNode]:
    """The cells from ``heading`` up to the next "## " heading."""
    headings = [_heading(cell) for cell in cells]
    if heading not in headings:
        return []
    start = headings.index(heading)
    end = next((i for i in range(start + 1, len(cells)) if headings[i]), len(cells))
    return cells[start:end]


def _parse(source: str) -> ast.Module:
    """A code cell's syntax tree; IPython's ``%magic`` and ``!shell`` lines count as ``pass``."""
    lines = [
        line[: len(line) - len(line.lstrip())] + "pass"
        if line.lstrip().startswith(("%", "!"))
        else line
        for line in source.splitlines()
    ]
    return ast.parse("\n".join(lines))


def _hidden_in_jupyterlab(cell: nbformat.NotebookNode) -> bool:
    return cell.metadata.get("jupyter", {}).get("source_hidden") is True


def _ends_in_a_check(source: str) -> bool:
    """Whether the cell's last statement is an assert, or a call of an ``assert...`` function
    (``torch.testing.assert_close``)."""
    body = _parse(source).body
    last = body[-1] if body else None
    if isinstance(last, ast.Assert):
        return True
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
        func = last.value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name.startswith("assert")
    return False


@notebook_params
def test_exercises_have_folded_solutions_that_end_in_asserts(path: Path) -> None:
    cells = _read(path).cells
    section = _section(cells, "## Exercises")
    number = path.name[:2]
    outside = [
        label
        for cell in cells
        if cell.cell_type == "markdown" and not any(cell is other for other in section)
        for label in EXERCISE.findall(cell.source)
        + [m.group(2) for m in SOLUTION_START.finditer(cell.source)]
    ]
    assert not outside, f"{path.name}: expected exercises under '## Exercises' only, got {outside}"
    labels, solved, open_label, solution_code = [], [], None, []
    for previous, cell in zip([None, *section], section, strict=False):
        follows_a_solution = (
            previous is not None
            and previous.cell_type == "markdown"
            and SOLUTION_END.search(previous.source)
        )
        if follows_a_solution and not re.match(r"`{3,}\{exercise\}", cell.source.lstrip()):
            pytest.fail(
                f"{path.name}: expected the next exercise right after a solution, got "
                f"{cell.source.strip()[:80]!r} (it shows while the solution is folded: put it "
                "inside the solution)"
            )
        if cell.cell_type == "code":
            if open_label is None:
                pytest.fail(f"{path.name}: expected every exercise code cell inside a solution")
            assert _hidden_in_jupyterlab(cell), (
                f"{path.name}: expected the solution to {open_label} folded in JupyterLab too "
                "(cell metadata jupyter.source_hidden: true)"
            )
            solution_code.append(cell.source)
            continue
        events = sorted(
            [(m.start(), "exercise", m.group(1)) for m in EXERCISE.finditer(cell.source)]
            + [(m.start(), "start", m.group(2)) for m in SOLUTION_START.finditer(cell.source)]
            + [(m.start(), "end", "") for m in SOLUTION_END.finditer(cell.source)]
        )
        for _, what, label in events:
            if what == "exercise":
                assert open_label is None, f"{path.name}: {label} starts inside a solution"
                assert label.startswith(f"ex{number}-"), (
                    f"{path.name}: expected exercise labels ex{number}-..., got {label}"
                )
                labels.append(label)
            elif what == "start":
                assert open_label is None, f"{path.name}: solution to {label} inside another"
                assert label in labels and label not in solved, (
                    f"{path.name}: expected one solution per exercise, after it, got {label}"
                )
                open_label, solution_code = label, []
            else:
                assert open_label is not None, f"{path.name}: a solution-end without a start"
                assert solution_code, f"{path.name}: expected code in the solution to {open_label}"
                assert _ends_in_a_check(solution_code[-1]), (
                    f"{path.name}: expected the solution to {open_label} to end in an assert, "
                    f"got:\n{solution_code[-1]}"
                )
                # Text after the end is outside the fold: it would give the answer away.
                after = cell.source[SOLUTION_END.search(cell.source).end() :]
                assert not after.strip() or EXERCISE.search(after), (
                    f"{path.name}: expected nothing after the end of the solution to "
                    f"{open_label} in its cell (it shows while the solution is folded), got "
                    f"{after.strip()[:80]!r}"
                )
                solved.append(open_label)
                open_label = None
    assert open_label is None, f"{path.name}: the solution to {open_label} is never closed"
    assert len(labels) in EXERCISES_PER_CHAPTER, (
        f"{path.name}: expected {EXERCISES_PER_CHAPTER.start} to {EXERCISES_PER_CHAPTER.stop - 1} "
        f"exercises, got {len(labels)}"
    )
    assert solved == labels, f"{path.name}: expected a solution to each of {labels}, got {solved}"


# The questions the reader answers before the chapter shows the answer (convlstm_lib.quiz):
# at least this many per chapter, in its body, in cells the site shows only as the quiz.
QUESTIONS_PER_CHAPTER = 2


def _questions_asked(source: str) -> int:
    """How many choice(...) and number(...) questions the ask(...) calls of a cell hold."""
    tree = _parse(source)
    asks = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ask"
    ]
    return sum(
        1
        for call in asks
        for node in ast.walk(call)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"choice", "number"}
    )


@notebook_params
def test_asks_the_reader_to_predict_before_it_shows(path: Path) -> None:
    cells = _read(path).cells
    headings = [_heading(cell) for cell in cells]
    body = cells[: headings.index("## What we learned")] if "## What we learned" in headings else []
    asked = 0
    for cell in (cell for cell in cells if cell.cell_type == "code"):
        questions = _questions_asked(cell.source)
        if not questions:
            continue
        assert "remove-input" in cell.metadata.get("tags", []) and _hidden_in_jupyterlab(cell), (
            f"{path.name}: expected the cell that asks {cell.source[:60]!r} to show only the quiz "
            "(tag remove-input, metadata jupyter.source_hidden: true): its code holds the answers"
        )
        if any(cell is other for other in body):
            asked += questions
    assert asked >= QUESTIONS_PER_CHAPTER, (
        f"{path.name}: expected at least {QUESTIONS_PER_CHAPTER} questions (convlstm_lib.quiz) "
        f"before 'What we learned', got {asked}"
    )


def _library_names() -> set[str]:
    import convlstm_lib
    import convlstm_lib.plot
    import convlstm_lib.quiz

    return {*convlstm_lib.__all__, *convlstm_lib.plot.__all__, *convlstm_lib.quiz.__all__}


@notebook_params
def test_imports_the_library_and_never_redefines_it(path: Path) -> None:
    names = _library_names()
    defined = [
        node.name
        for cell in _code_cells(_read(path))
        for node in ast.walk(_parse(cell.source))
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in names
    ]
    assert not defined, f"{path.name}: expected the library's own, got redefinitions of {defined}"
