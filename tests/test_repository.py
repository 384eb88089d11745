"""The repository's address and the Binder environment: copies that must not drift.

The address is set in ``_config.yml`` alone; ``tools/set_repository.py`` writes the copies that
run where ``_config.yml`` is not at hand (the chapters' Colab cells, ``convlstm_lib/files.py``).
Binder's ``binder/requirements.txt`` must install exactly the pins of ``requirements.txt``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from tools import set_repository

ROOT = Path(__file__).resolve().parents[1]
# Other people's code cited in the bibliography is no copy of this repository's address.
NOT_COPIES = {"book/references.bib"}
# Joined here, so that the scan of the tracked files does not find it in this one.
FORK = "/".join(["https://github.com", "someone", "their-fork"])
GITHUB_REPO = re.compile(
    r"(?:https://github\.com|https://raw\.githubusercontent\.com)/[\w.-]+/[\w.-]+"
)


def _config_repository() -> dict[str, str]:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]


def _tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of tracked files")
    files = []
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if name in NOT_COPIES or not path.is_file():
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # checkpoints and images
        files.append(path)
    return files


def test_every_copy_of_the_address_is_current():
    assert set_repository.differences(ROOT) == []
    assert set_repository.main(["--check"]) == 0


def test_every_github_address_in_the_repository_is_config_ymls():
    """A copy written by hand somewhere new (a README link, a docstring) must match too."""
    url = _config_repository()["url"]
    raw = url.replace("https://github.com", "https://raw.githubusercontent.com")
    found = {
        f"{path.relative_to(ROOT)}: {match}"
        for path in _tracked_text_files()
        for match in GITHUB_REPO.findall(path.read_text(encoding="utf-8"))
        if match.removesuffix(".git") not in (url, raw)
    }
    assert not found, f"expected every repository address to be {url}, got:\n" + "\n".join(
        sorted(found)
    )


def _copy_of_the_copies(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "convlstm_lib").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", root)
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copy(ROOT / set_repository.FILES_MODULE, root / "convlstm_lib")
    return root


def test_a_new_address_in_config_yml_reaches_every_copy(tmp_path, capsys):
    root = _copy_of_the_copies(tmp_path)
    config = root / "_config.yml"
    old = _config_repository()
    config.write_text(
        config.read_text()
        .replace(f"url: {old['url']}", f"url: {FORK}")
        .replace(f"branch: {old['branch']}", "branch: gh-pages-test")
    )
    assert set_repository.main(["--check", "--root", str(root)]) == 1
    assert "notebooks/07_forecasting_many_frames.ipynb" in capsys.readouterr().err
    assert set_repository.main(["--root", str(root)]) == 0
    assert set_repository.main(["--check", "--root", str(root)]) == 0
    module = (root / set_repository.FILES_MODULE).read_text()
    assert f'REPOSITORY_URL = "{FORK}"' in module
    assert 'BRANCH = "gh-pages-test"' in module
    for notebook in (root / "notebooks").glob("*.ipynb"):
        text = notebook.read_text()
        cell = next(c for c in nbformat.reads(text, 4).cells if c.cell_type == "code").source
        assert f'REPOSITORY = "{FORK}"' in cell, notebook.name
        assert 'git+{REPOSITORY}@gh-pages-test"' in cell, notebook.name
        assert old["url"] not in text, notebook.name
    # Nothing else in a chapter changed: the rewrite touches two lines of each (the address
    # and the branch).
    before = (ROOT / "notebooks" / "01_rnn_outputs_and_states.ipynb").read_text().splitlines()
    after = (root / "notebooks" / "01_rnn_outputs_and_states.ipynb").read_text().splitlines()
    assert len(before) == len(after)
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://gitlab.com/a/b", r"repository\.url to be https://github\.com/<owner>/<name>"),
        ("https://github.com/only-owner", r"got 'https://github\.com/only-owner'"),
    ],
)
def test_an_address_that_is_not_a_github_repository_is_refused(tmp_path, url, message):
    root = _copy_of_the_copies(tmp_path)
    config = root / "_config.yml"
    config.write_text(config.read_text().replace(_config_repository()["url"], url))
    with pytest.raises(ValueError, match=message):
        set_repository.main(["--check", "--root", str(root)])


# Binder.


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_binder_installs_the_root_requirements_and_pins_nothing_else():
    """repo2docker reads binder/ instead of the root; its file must add no pin of its own.

    Everything it installs comes from ``-r ../requirements.txt`` (pip resolves ``-r`` relative
    to the including file), so the pins cannot drift; the only other lines are pip options,
    such as the CPU-only index for torch.
    """
    lines = _requirement_lines(ROOT / "binder" / "requirements.txt")
    includes = [line.split(maxsplit=1)[1] for line in lines if line.startswith("-r ")]
    assert includes == ["../requirements.txt"]
    assert (ROOT / "binder" / includes[0]).resolve() == ROOT / "requirements.txt"
    others = [line for line in lines if not line.startswith("-r ")]
    assert all(line.startswith("--") for line in others), (
        f"binder/requirements.txt: expected only -r ../requirements.txt and pip options, got {others}"
    )
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in others


def test_root_requirements_pin_every_package_exactly():
    lines = _requirement_lines(ROOT / "requirements.txt")
    loose = [
        line for line in lines if line != "-e ." and not re.fullmatch(r"[\w.-]+==[\w.+]+", line)
    ]
    assert not loose, f"requirements.txt: expected name==version lines and -e ., got {loose}"
    names = [line.split("==")[0].lower() for line in lines if "==" in line]
    assert "jupyterlab" in names  # `make lab`, and Binder's interface
    assert len(names) == len(set(names))


def test_binder_runs_the_python_the_makefile_sets_up():
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    makefile = (ROOT / "Makefile").read_text()
    version = re.search(r"^PYTHON \?= python(\d+\.\d+)$", makefile, re.M)
    assert version, "Makefile: expected a line PYTHON ?= python3.N"
    assert runtime == f"python-{version.group(1)}"
