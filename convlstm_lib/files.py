"""The files a chapter loads (checkpoints, their logs, data), checked against their SHA-256.

:func:`book_file` takes a path inside the repository and returns a local file whose SHA-256 is
the one registered for that path in ``book_files.sha256``, which ships inside the package and
is written by ``tools/register_files.py``. In a clone of the repository that is the committed
file itself; elsewhere (Colab, a plain ``pip install``) the file is downloaded once from the
repository into a cache.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import urllib.parse
from importlib import resources
from pathlib import Path, PurePosixPath

__all__ = ["BRANCH", "REPOSITORY_URL", "book_file"]

# Where the book lives; tests/test_files.py checks that they are what _config.yml says.
#: The book's repository, where :func:`~convlstm_lib.book_file` finds what a clone holds.
REPOSITORY_URL = "https://github.com/convlstm-book/convlstm-book"
#: The branch of :data:`REPOSITORY_URL` whose files :func:`~convlstm_lib.book_file` downloads.
BRANCH = "main"
# GitHub serves every committed file of a branch, byte for byte, under this address.
_DEFAULT_BASE_URL = (
    f"https://raw.githubusercontent.com{urllib.parse.urlsplit(REPOSITORY_URL).path}/{BRANCH}/"
)
_URL_ENV = "CONVLSTM_BOOK_URL"
_CACHE_ENV = "CONVLSTM_BOOK_CACHE"
_REGISTRY = "book_files.sha256"
_OWNER = "book_file"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        # In chunks: a dataset may be larger than is worth holding in memory at once.
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_registry(text: str, source: str) -> dict[str, str]:
    """The ``{path: sha256}`` entries of a registry in ``sha256sum`` format.

    Blank lines and lines starting with ``#`` are skipped. Every path must be relative and stay
    inside the repository, since it also names a file in the download cache.
    """
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(maxsplit=1)
        # sha256sum writes "<hex>  <path>", or "<hex> *<path>" in its binary mode.
        path = fields[1].removeprefix("*") if len(fields) == 2 else ""
        parts = PurePosixPath(path).parts
        if (
            not re.fullmatch(r"[0-9a-f]{64}", fields[0])
            or not parts
            or PurePosixPath(path).is_absolute()
            or ".." in parts
            or "\\" in path
            or path in entries
        ):
            raise ValueError(
                f"{source}, line {number}: expected '<sha256 in hex>  <path inside the "
                f"repository>' with a path not listed before, got {line!r}"
            )
        entries[path] = fields[0]
    return entries


def _read_registry() -> dict[str, str]:
    # Through importlib.resources, so that it is found in a wheel as well as in a clone.
    registry = resources.files(__package__).joinpath(_REGISTRY)
    return _parse_registry(registry.read_text(encoding="utf-8"), f"{__package__}/{_REGISTRY}")


def _clone_root(root: str | os.PathLike | None) -> Path | None:
    """The root of the repository's clone to read files from, or ``None`` if there is none."""
    # Installed from a clone with `pip install -e .`, the package sits in the repository's root.
    candidate = Path(__file__).resolve().parent.parent if root is None else Path(root)
    return candidate if (candidate / "_toc.yml").is_file() else None


def _checked_local(root: Path, path: str, digest: str) -> Path:
    local = root.joinpath(*PurePosixPath(path).parts)
    if not local.is_file():
        raise FileNotFoundError(
            f"{_OWNER}: expected {path} in the clone of the repository at {root}, got no such "
            f"file; restore it with `git checkout -- {path}`, or, if it is gone for good, run "
            "`python tools/register_files.py` (both from the repository's root)"
        )
    actual = _sha256(local)
    if actual != digest:
        raise ValueError(
            f"{_OWNER}: {local} has been altered: expected sha256 {digest}, got {actual}; "
            f"restore it with `git checkout -- {path}`, or, if the change is meant, run "
            "`python tools/register_files.py` (both from the repository's root)"
        )
    return local


def _downloaded(
    path: str, digest: str, base_url: str | None, cache_dir: str | os.PathLike | None
) -> Path:
    # Imported here: a clone never downloads, and `import convlstm_lib` stays light.
    import pooch
    import requests

    base = base_url or os.environ.get(_URL_ENV) or _DEFAULT_BASE_URL
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise ValueError(
            f"{_OWNER}: expected base_url (or ${_URL_ENV}) to be an http:// or https:// "
            f"address, got {base!r}"
        )
    url = base.rstrip("/") + "/" + urllib.parse.quote(path)
    cache = Path(cache_dir or os.environ.get(_CACHE_ENV) or pooch.os_cache(__package__))
    # The repository's folders are kept in the cache, so that equal names cannot collide.
    target = cache.expanduser().joinpath(*PurePosixPath(path).parts)
    try:
        # pooch downloads only when the cached file is missing or has another hash, and moves
        # a download into place only once its hash is the registered one.
        local = pooch.retrieve(
            url=url,
            known_hash=f"sha256:{digest}",
            fname=target.name,
            path=target.parent,
            progressbar=False,
        )
    except ValueError as err:
        # pooch's message ends "... but got <hex>. Deleted download for safety. ...".
        got = re.search(r"but got ([0-9a-f]{64})", str(err))
        came = f"sha256 {got.group(1)}" if got else "a file with another hash"
        raise ValueError(
            f"{_OWNER}: the download of {path} from {url} is not the registered file: expected "
            f"sha256 {digest}, got {came} (deleted); the address serves another version of "
            f"it: use the convlstm_lib that matches the address, or a clone of {REPOSITORY_URL}"
        ) from err
    except (requests.ConnectionError, requests.Timeout) as err:
        raise ConnectionError(
            f"{_OWNER}: could not download {path} from {url} ({type(err).__name__}): the file "
            f"needs the network once, then it is cached in {target.parent}; or work in a clone "
            f"of {REPOSITORY_URL}, which holds it"
        ) from err
    except requests.RequestException as err:  # an HTTP error status, such as 404
        raise OSError(
            f"{_OWNER}: could not download {path}: expected {url} to serve it, got {err}; set "
            f"base_url (or ${_URL_ENV}) to an address that serves the repository's files, or "
            f"work in a clone of {REPOSITORY_URL}"
        ) from err
    return Path(local)


def book_file(
    path: str,
    *,
    root: str | os.PathLike | None = None,
    base_url: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    r"""A local copy of the repository's file at ``path``, checked against its registered SHA-256.

    Every file a chapter loads (a checkpoint, its training log, a dataset) is registered with
    its SHA-256 in ``convlstm_lib/book_files.sha256``, which ``tools/register_files.py``
    writes. Where the file comes from depends on where the library runs:

    * **In a clone of the repository** (the package installed from it with ``pip install -e .``,
      or ``root`` given): the committed file itself, after checking its hash.
    * **Elsewhere** (Colab, a plain ``pip install``): a download from the repository, made once
      with :func:`pooch.retrieve` into a cache; a later call checks the cached copy instead of
      downloading again. A download with another hash is deleted, never returned.

    Args:
        path: The file's path relative to the repository's root, with ``/`` between folders,
            as registered, e.g. ``"experiments/checkpoints/beams_convlstm.pt"``.
        root: The clone to read the file from: a folder holding ``_toc.yml`` is one; any other
            folder means there is no clone, and the file is downloaded. Default: the folder
            above the package, when it holds ``_toc.yml``
        base_url: The address the repository's files are downloaded from, ``path`` appended.
            Default: ``$CONVLSTM_BOOK_URL`` if set, else the branch :data:`~convlstm_lib.files.BRANCH` of
            :data:`~convlstm_lib.files.REPOSITORY_URL` on ``raw.githubusercontent.com``
        cache_dir: The folder downloads are kept in, the repository's subfolders kept.
            Default: ``$CONVLSTM_BOOK_CACHE`` if set, else ``pooch.os_cache("convlstm_lib")``

    Returns:
        The path of the checked local file.

    Raises:
        ValueError: if ``path`` is not registered, or the file (local or downloaded) has
            another SHA-256 than the registered one.
        FileNotFoundError: if a clone lacks the file.
        ConnectionError: if the address cannot be reached to download the file.
        OSError: if the address answers with an HTTP error instead of the file.

    Examples::

        >>> import torch
        >>> from convlstm_lib.files import book_file
        >>> path = book_file("experiments/checkpoints/mnist_fclstm.pt")
        >>> saved = torch.load(path, weights_only=True)
        >>> saved["config"]["model"], saved["config"]["dataset"]
        ('fclstm', 'mnist')
    """
    if not isinstance(path, str):
        raise TypeError(
            f"{_OWNER}: expected path to be a str such as "
            f"'experiments/checkpoints/beams_convlstm.pt', got {type(path).__name__}"
        )
    registry = _read_registry()
    digest = registry.get(path)
    if digest is None:
        close = difflib.get_close_matches(path, list(registry), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{_OWNER}: expected a path registered in {__package__}/{_REGISTRY}, got {path!r}"
            f"{hint}; to register a file, put it in the repository, add a glob that matches it "
            "to SHIPPED in tools/register_files.py unless one does, run "
            "`python tools/register_files.py`, and commit both"
        )
    clone = _clone_root(root)
    if clone is not None:
        return _checked_local(clone, path, digest)
    return _downloaded(path, digest, base_url, cache_dir)
