"""Write the repository's address from _config.yml into every file that needs a copy of it.

The published address is set in one place, ``repository.url`` and ``repository.branch`` in
``_config.yml`` (Jupyter Book's launch, edit and issue buttons read it there). Two kinds of file
need their own copy, because they run where ``_config.yml`` is not at hand:

* the first code cell of every chapter (``notebooks/*.ipynb``), which on Colab installs the
  library from the repository, at that branch;
* ``convlstm_lib/files.py`` (``REPOSITORY_URL``, ``BRANCH``), from whose raw address an installed
  library downloads the files the chapters load.

After changing the address in ``_config.yml``::

    python tools/set_repository.py          # rewrite the copies
    python tools/set_repository.py --check  # exit 1, listing the stale copies

``tests/test_repository.py`` runs the check, so a copy cannot drift from ``_config.yml``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import yaml

__all__ = ["COLAB_CELL", "FILES_MODULE", "address", "colab_cell", "differences", "main"]

ROOT = Path(__file__).resolve().parents[1]
FILES_MODULE = Path("convlstm_lib/files.py")
COLAB_CELL = """\
# On Colab, install the book's library first; elsewhere this cell does nothing.
import subprocess
import sys

if "google.colab" in sys.modules:
    REPOSITORY = "{url}"
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    library = f"convlstm_lib[quiz] @ git+{{REPOSITORY}}@{branch}"
    subprocess.run([*pip, library], check=True)"""
# The two assignments in files.py, whatever they hold now.
_ASSIGNMENT = r'^({name} = )"[^"\n]*"$'


def address(root: Path = ROOT) -> tuple[str, str]:
    """``(url, branch)`` of ``repository`` in ``root``'s ``_config.yml``."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repository = config.get("repository") or {}
    url, branch = repository.get("url"), repository.get("branch")
    if not isinstance(url, str) or not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(
            "_config.yml: expected repository.url to be https://github.com/<owner>/<name>, "
            f"got {url!r}"
        )
    if not isinstance(branch, str) or not branch:
        raise ValueError(f"_config.yml: expected repository.branch, got {branch!r}")
    return url, branch


def colab_cell(root: Path = ROOT) -> str:
    """The source of every chapter's first code cell, for ``root``'s address."""
    url, branch = address(root)
    return COLAB_CELL.format(url=url, branch=branch)


def _files_module_text(text: str, url: str, branch: str) -> str:
    for name, value in (("REPOSITORY_URL", url), ("BRANCH", branch)):
        text, count = re.subn(
            _ASSIGNMENT.format(name=name), rf'\g<1>"{value}"', text, count=1, flags=re.M
        )
        if count != 1:
            raise ValueError(f'{FILES_MODULE}: expected a line {name} = "...", got none')
    return text


def _rewritten(root: Path) -> dict[Path, str]:
    """The text every file that holds a copy of the address should have, by path."""
    url, branch = address(root)
    cell = colab_cell(root)
    texts = {}
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        if not code or not code[0].source.startswith(COLAB_CELL.splitlines()[0]):
            raise ValueError(
                f"{path.relative_to(root)}: expected the Colab cell as the first code cell, "
                f"got {code[0].source.splitlines()[:1] if code else 'no code cell'}"
            )
        code[0].source = cell
        texts[path] = nbformat.writes(notebook) + "\n"
    module = root / FILES_MODULE
    texts[module] = _files_module_text(module.read_text(encoding="utf-8"), url, branch)
    return texts


def differences(root: Path = ROOT) -> list[str]:
    """The files whose copy of the address differs from ``_config.yml``'s; empty if none."""
    return [
        str(path.relative_to(root))
        for path, text in _rewritten(root).items()
        if path.read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    """Rewrite the copies of the address (or, with ``--check``, compare them); the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a copy is stale"
    )
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the repository's root (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    url, branch = address(args.root)
    stale = differences(args.root)
    if args.check:
        if stale:
            print(f"not at {url} ({branch}):", *stale, sep="\n  ", file=sys.stderr)
            print("Run `python tools/set_repository.py` to rewrite them.", file=sys.stderr)
            return 1
        print(f"every copy of the address is {url} ({branch}).")
        return 0
    for path, text in _rewritten(args.root).items():
        if str(path.relative_to(args.root)) in stale:
            path.write_text(text, encoding="utf-8")
    print(f"set {url} ({branch}) in {len(stale)} files", *stale, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
