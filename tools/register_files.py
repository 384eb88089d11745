"""Write convlstm_lib/book_files.sha256: the SHA-256 of every file the chapters load.

``convlstm_lib.files.book_file`` resolves a chapter's files (checkpoints, their logs, data) by
their path in the repository, and refuses any whose hash differs from the one registered here:
in a clone of the repository it checks the committed file, elsewhere (Colab, a plain
``pip install``) it downloads the file once and checks the download. After a file changes or a
new one is added (a retrained checkpoint, a dataset), register it::

    python tools/register_files.py          # rewrite the registry
    python tools/register_files.py --check  # exit 1, listing the differences, if it is stale

The files are those that ``SHIPPED`` matches, relative to the repository root: add a glob there
for a new kind of file. The registry is in ``sha256sum`` format, so
``sha256sum -c convlstm_lib/book_files.sha256`` run from the repository root checks it too.
It hashes and parses with the library's own functions, so the two cannot disagree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the library of this checkout
from convlstm_lib.files import _parse_registry, _sha256  # noqa: E402  (one hash, one parser)

__all__ = ["HEADER", "REGISTRY", "SHIPPED", "differences", "main", "registry_text"]

# Every file the chapters load through book_file, as globs relative to the repository root.
# bench.json: the full benchmark's results, which chapter *Making it fast* shows.
SHIPPED = ("experiments/checkpoints/**/*", "data/*.npz", "benchmarks/results/bench.json")
REGISTRY = PurePosixPath("convlstm_lib/book_files.sha256")  # shipped inside the package
HEADER = """\
# SHA-256 of every file the chapters load through convlstm_lib.files.book_file, by its path in
# the repository. Written by `python tools/register_files.py`; do not edit by hand.
"""


def _shipped(root: Path) -> dict[str, str]:
    """The SHA-256 of every file under ``root`` that ``SHIPPED`` matches, by POSIX path."""
    found = {}
    for pattern in SHIPPED:
        for path in root.glob(pattern):
            relative = path.relative_to(root)
            # Hidden files (.gitkeep, .DS_Store) are bookkeeping, never something a chapter loads.
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                found[relative.as_posix()] = _sha256(path)
    return dict(sorted(found.items()))


def _parse(text: str) -> dict[str, str]:
    """The entries of a registry in ``sha256sum`` format, as ``book_file`` reads them."""
    return _parse_registry(text, str(REGISTRY))


def registry_text(root: Path = ROOT) -> str:
    """The registry for the files under ``root``: the header, then one sorted line a file."""
    lines = [f"{digest}  {path}\n" for path, digest in _shipped(root).items()]
    return HEADER + "".join(lines)


def differences(root: Path = ROOT) -> list[str]:
    """What differs between ``root``'s registry and its files, one line each; empty if current."""
    registry = root / REGISTRY
    if not registry.is_file():
        return [f"{REGISTRY}: expected the registry, got no such file"]
    written = registry.read_text(encoding="utf-8")
    registered, shipped = _parse(written), _shipped(root)
    found = []
    for path in sorted(registered.keys() | shipped.keys()):
        if path not in shipped:
            found.append(f"{path}: registered, but not on disk (or no longer matched by SHIPPED)")
        elif path not in registered:
            found.append(f"{path}: on disk, not registered")
        elif registered[path] != shipped[path]:
            found.append(
                f"{path}: registered sha256 {registered[path]}, the file has {shipped[path]}"
            )
    if not found and written != registry_text(root):
        found.append(f"{REGISTRY}: same entries, but not in the layout this tool writes")
    return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"Files registered: {', '.join(SHIPPED)} (SHIPPED in this script).",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1, listing the differences, if the registry is stale",
    )
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the repository's root (default: %(default)s)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Rewrite the registry (or, with ``--check``, compare it); return the exit status."""
    args = _parser().parse_args(argv)
    if args.check:
        found = differences(args.root)
        if found:
            print(f"{REGISTRY} is stale:", *found, sep="\n  ", file=sys.stderr)
            print("Run `python tools/register_files.py` to rewrite it.", file=sys.stderr)
            return 1
        print(f"{REGISTRY} is current.")
        return 0
    text = registry_text(args.root)
    (args.root / REGISTRY).write_text(text, encoding="utf-8")
    print(f"wrote {REGISTRY} ({len(_parse(text))} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
