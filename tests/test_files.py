"""convlstm_lib.files.book_file and its registry, in a clone and through a local HTTP server.

The download tests serve copies of the committed files from 127.0.0.1, so they need no network
and check the same bytes and hashes the book ships.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from convlstm_lib.files import _DEFAULT_BASE_URL, BRANCH, REPOSITORY_URL, _parse_registry, book_file
from tools import register_files

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "convlstm_lib" / "book_files.sha256"


def _registered() -> dict[str, str]:
    # Read independently of the library: sha256sum's "<hex>  <path>" lines.
    lines = REGISTRY.read_text().splitlines()
    return {
        path: digest
        for digest, path in (line.split("  ", 1) for line in lines if not line.startswith("#"))
    }


# The smallest registered file keeps the download tests fast; any registered file would do.
SMALL = min(_registered(), key=lambda path: (ROOT / path).stat().st_size)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_config_yml_names_the_repository_and_branch():
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    assert (REPOSITORY_URL, BRANCH) == (repository["url"], repository["branch"])
    owner_and_name = repository["url"].removeprefix("https://github.com/")
    assert _DEFAULT_BASE_URL == (
        f"https://raw.githubusercontent.com/{owner_and_name}/{repository['branch']}/"
    )


# The registry.


def test_registry_is_current():
    assert register_files.differences(ROOT) == []
    assert register_files.main(["--check"]) == 0


def test_registry_covers_every_checkpoint_log_and_dataset():
    shipped = sorted(
        p.relative_to(ROOT).as_posix()
        for pattern in ("experiments/checkpoints/*", "data/*.npz", "benchmarks/results/bench.json")
        for p in ROOT.glob(pattern)
    )
    assert shipped and sorted(_registered()) == shipped


@pytest.mark.parametrize("path", sorted(_registered()))
def test_every_registered_file_is_in_the_clone_and_matches(path):
    assert book_file(path) == ROOT / path
    assert _sha256(ROOT / path) == _registered()[path]


def test_check_lists_an_altered_an_unregistered_and_a_missing_file(tmp_path, capsys):
    shutil.copytree(ROOT / "experiments" / "checkpoints", tmp_path / "experiments" / "checkpoints")
    shutil.copytree(ROOT / "data", tmp_path / "data")
    results = ROOT / "benchmarks" / "results"  # bench.json, once the benchmark is committed
    if results.is_dir():
        shutil.copytree(results, tmp_path / "benchmarks" / "results")
    (tmp_path / "convlstm_lib").mkdir()
    shutil.copy(REGISTRY, tmp_path / "convlstm_lib")
    assert register_files.main(["--check", "--root", str(tmp_path)]) == 0
    checkpoints = tmp_path / "experiments" / "checkpoints"
    altered, missing = sorted(_registered())[:2]
    (tmp_path / altered).write_bytes(b"retrained")
    (tmp_path / missing).unlink()
    (checkpoints / "new.pt").write_bytes(b"new")
    (checkpoints / ".gitkeep").touch()  # hidden: never registered
    capsys.readouterr()
    assert register_files.main(["--check", "--root", str(tmp_path)]) == 1
    report = capsys.readouterr().err
    assert f"{altered}: registered sha256 {_registered()[altered]}" in report
    assert f"{missing}: registered, but not on disk" in report
    assert "experiments/checkpoints/new.pt: on disk, not registered" in report
    assert ".gitkeep" not in report
    assert register_files.main(["--root", str(tmp_path)]) == 0
    assert register_files.main(["--check", "--root", str(tmp_path)]) == 0
    rewritten = _parse_registry((tmp_path / register_files.REGISTRY).read_text(), "rewritten")
    assert rewritten[altered] == hashlib.sha256(b"retrained").hexdigest()
    assert missing not in rewritten and "experiments/checkpoints/new.pt" in rewritten


@pytest.mark.parametrize(
    "line",
    [
        "abc  experiments/x.pt",  # not a sha256
        f"{'0' * 64}",  # no path
        f"{'0' * 64}  /etc/passwd",
        f"{'0' * 64}  experiments/../../outside.pt",
        f"{'0' * 64}  experiments\\x.pt",
    ],
)
def test_registry_lines_that_are_refused(line):
    with pytest.raises(ValueError, match=r"^reg, line 2: expected '<sha256 in hex>  <path"):
        _parse_registry(f"# a comment\n{line}\n", "reg")


def test_registry_accepts_sha256sum_binary_mode_and_refuses_duplicates():
    digest = "0" * 64
    assert _parse_registry(f"{digest} *a/b.pt\n\n", "reg") == {"a/b.pt": digest}
    with pytest.raises(ValueError, match=r"reg, line 2: .* not listed before"):
        _parse_registry(f"{digest}  a/b.pt\n{digest}  a/b.pt\n", "reg")


# The path argument.


def test_unknown_path_says_how_to_register_it():
    wrong = SMALL.replace("checkpoints/", "checkpoint/")
    with pytest.raises(ValueError, match="expected a path registered in") as info:
        book_file(wrong)
    message = str(info.value)
    assert f"got {wrong!r} (did you mean {SMALL!r}?)" in message
    assert "SHIPPED in tools/register_files.py" in message
    assert "`python tools/register_files.py`" in message


def test_path_must_be_a_str():
    with pytest.raises(TypeError, match=r"expected path to be a str .*, got PosixPath"):
        book_file(Path(SMALL))


# In a clone.


def _clone(tmp_path: Path) -> Path:
    """A copy of the repository's root holding only _toc.yml and the small registered file."""
    clone = tmp_path / "clone"
    (clone / SMALL).parent.mkdir(parents=True)
    shutil.copy(ROOT / "_toc.yml", clone)
    shutil.copy(ROOT / SMALL, clone / SMALL)
    return clone


def test_in_the_clone_the_committed_file_is_returned():
    assert book_file(SMALL) == ROOT / SMALL
    assert book_file(SMALL, root=ROOT) == ROOT / SMALL


def test_root_with_toc_is_a_clone_and_never_downloads(tmp_path):
    clone = _clone(tmp_path)
    assert book_file(SMALL, root=clone, base_url="http://127.0.0.1:9/") == clone / SMALL


def test_altered_file_in_a_clone_is_refused(tmp_path):
    clone = _clone(tmp_path)
    with (clone / SMALL).open("a") as file:
        file.write("one more line\n")
    expected, got = _registered()[SMALL], _sha256(clone / SMALL)
    message = (
        f"book_file: {clone / SMALL} has been altered: expected sha256 {expected}, got {got}; "
        f"restore it with `git checkout -- {SMALL}`, or, if the change is meant, run "
        "`python tools/register_files.py`"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        book_file(SMALL, root=clone)


def test_missing_file_in_a_clone_is_a_file_not_found_error(tmp_path):
    clone = _clone(tmp_path)
    (clone / SMALL).unlink()
    message = f"book_file: expected {SMALL} in the clone of the repository at {clone}, got no"
    with pytest.raises(FileNotFoundError, match=re.escape(message)):
        book_file(SMALL, root=clone)


# Without a clone: downloads from a local server.


@dataclass
class _Server:
    """A local HTTP server of ``served``, counting the GET requests it answers."""

    served: Path
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        served, requests = self.served, self.requests

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(served), **kwargs)

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass  # keep the test output to what fails

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut the server down and free its port; calling it again does nothing."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    """A server of a copy of the small registered file, at its repository path."""
    # requests would send even 127.0.0.1 through a proxy named in the environment.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    # Neither may leak in from the environment into the tests that leave them out.
    monkeypatch.delenv("CONVLSTM_BOOK_URL", raising=False)
    monkeypatch.delenv("CONVLSTM_BOOK_CACHE", raising=False)
    served = tmp_path / "served"
    (served / SMALL).parent.mkdir(parents=True)
    shutil.copy(ROOT / SMALL, served / SMALL)
    running = _Server(served)
    yield running
    running.stop()


@pytest.fixture
def no_clone(tmp_path: Path) -> Path:
    """A root without _toc.yml: book_file behaves as on Colab."""
    folder = tmp_path / "no_clone"
    folder.mkdir()
    return folder


def test_download_arrives_checked_and_is_cached(server, no_clone, tmp_path):
    cache = tmp_path / "cache"
    path = book_file(SMALL, root=no_clone, base_url=server.url, cache_dir=cache)
    assert path == cache / SMALL  # the repository's folders kept in the cache
    assert _sha256(path) == _registered()[SMALL]
    assert server.requests == [f"/{SMALL}"]
    assert book_file(SMALL, root=no_clone, base_url=server.url, cache_dir=cache) == path
    assert len(server.requests) == 1  # the second call found the cached copy


def test_altered_cached_copy_is_downloaded_again(server, no_clone, tmp_path):
    cache = tmp_path / "cache"
    path = book_file(SMALL, root=no_clone, base_url=server.url, cache_dir=cache)
    path.write_text("altered in the cache")
    assert book_file(SMALL, root=no_clone, base_url=server.url, cache_dir=cache) == path
    assert _sha256(path) == _registered()[SMALL]
    assert len(server.requests) == 2


def test_environment_variables_set_the_address_and_the_cache(server, no_clone, tmp_path):
    cache = tmp_path / "env_cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLSTM_BOOK_URL", server.url.rstrip("/"))  # a slash is added
        patch.setenv("CONVLSTM_BOOK_CACHE", str(cache))
        assert book_file(SMALL, root=no_clone) == cache / SMALL
    assert server.requests == [f"/{SMALL}"]


def test_corrupted_download_is_refused_and_not_kept(server, no_clone, tmp_path):
    corrupted = server.served / SMALL
    corrupted.write_bytes(corrupted.read_bytes() + b"\n")
    cache = tmp_path / "empty_cache"
    message = (
        f"book_file: the download of {SMALL} from {server.url}{SMALL} is not the registered "
        f"file: expected sha256 {_registered()[SMALL]}, got sha256 {_sha256(corrupted)}"
    )
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        book_file(SMALL, root=no_clone, base_url=server.url, cache_dir=cache)
    assert isinstance(info.value.__cause__, ValueError)  # pooch's own message, chained
    assert not (cache / SMALL).exists()
    assert server.requests == [f"/{SMALL}"]


def test_missing_on_the_server_is_an_http_error(server, no_clone, tmp_path):
    (server.served / SMALL).unlink()
    with pytest.raises(
        OSError, match=re.escape(f"expected {server.url}{SMALL} to serve it, got 404")
    ) as info:
        book_file(SMALL, root=no_clone, base_url=server.url, cache_dir=tmp_path / "cache")
    assert not isinstance(info.value, ConnectionError)


def test_unreachable_server_is_a_clear_connection_error(server, no_clone, tmp_path):
    server.stop()
    message = (
        rf"book_file: could not download {re.escape(SMALL)} from {re.escape(server.url + SMALL)}"
        r" \(ConnectionError\): the file needs the network once, .* or work in a clone of "
        + re.escape(REPOSITORY_URL)
    )
    with pytest.raises(ConnectionError, match=message):
        book_file(SMALL, root=no_clone, base_url=server.url, cache_dir=tmp_path / "cache")


def test_base_url_must_be_http(no_clone):
    with pytest.raises(ValueError, match=r"expected base_url .* http:// or https://.*, got 'x/'"):
        book_file(SMALL, root=no_clone, base_url="x/")
