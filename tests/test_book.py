"""The book's own pages (``book/``): what they list must match what the repository holds.

The strict build (``make book``) checks that they render without a warning; these tests check
that they stay complete as the library, the vendored JavaScript and the data grow.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import convlstm_lib
import convlstm_lib.plot
import convlstm_lib.quiz

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "book" / "api.md"
LICENCES = ROOT / "book" / "data_and_licences.md"


def _documented(text: str) -> set[str]:
    """The names the API page documents, each qualified by the ``currentmodule`` above it."""
    names, module = set(), None
    for line in text.splitlines():
        if found := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = found[1]
        elif found := re.match(r"\.\. auto(?:class|function|data):: (\S+)", line):
            names.add(f"{module}.{found[1]}")
    return names


def test_api_page_documents_every_public_name() -> None:
    documented = _documented(API.read_text(encoding="utf-8"))
    public = {f"convlstm_lib.{name}" for name in convlstm_lib.__all__}
    public |= {f"convlstm_lib.plot.{name}" for name in convlstm_lib.plot.__all__}
    public |= {f"convlstm_lib.quiz.{name}" for name in convlstm_lib.quiz.__all__}
    assert public <= documented, (
        f"book/api.md: expected every public name, missing {public - documented}"
    )
    for name in documented:
        module, _, attribute = name.rpartition(".")
        assert hasattr(__import__(module, fromlist=[attribute]), attribute), (
            f"book/api.md: expected {name} to exist, got no such name"
        )


def test_api_page_is_in_the_book() -> None:
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    assert "file: book/api" in toc and "file: book/data_and_licences" in toc
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    assert "{doc}`api`" in intro and "{doc}`data_and_licences`" in intro


def _vendored() -> list[tuple[str, str]]:
    """(package, version) of every package tools/vendor_assets.sh fetches from npm."""
    script = (ROOT / "tools" / "vendor_assets.sh").read_text(encoding="utf-8")
    block = re.search(r"PACKAGES=\((.*?)\n\)", script, re.S)
    assert block, "tools/vendor_assets.sh: expected a PACKAGES=( ... ) list, got none"
    return re.findall(r'"(@?[^@\s"]+)@(\S+) sha512-', block[1])


def test_licences_page_lists_every_vendored_package() -> None:
    page = LICENCES.read_text(encoding="utf-8")
    packages = _vendored()
    assert len(packages) >= 4, f"expected the vendored packages, got {packages}"
    for package, version in packages:
        assert f"`{package}` {version}" in page, (
            f"book/data_and_licences.md: expected a row for {package} {version}, got none"
        )


@pytest.mark.parametrize("event", sorted(convlstm_lib.load_radar()))
def test_licences_page_lists_every_radar_event(event: str) -> None:
    page = LICENCES.read_text(encoding="utf-8")
    assert f"`{event}`" in page, f"book/data_and_licences.md: expected a row for {event}"
