"""A bibliography that matches the book's author-year citations.

sphinxcontrib-bibtex cites as "Shi et al. [2015]" (``bibtex_reference_style: author_year``)
but labels the list with pybtex's alpha keys ("[SCW+15]"). This extension registers the
pybtex style ``authoryear``: entries sorted by author, year and title, each labelled as it is
cited ("Shi et al., 2015"). ``_config.yml`` selects it with ``bibtex_default_style``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx

__all__ = ["AuthorYearLabelStyle", "AuthorYearStyle", "setup"]


def _surname(person: Any) -> str:
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels "Keydana, 2020", "Hochreiter and Schmidhuber, 1997", "Shi et al., 2015"."""

    def format_labels(self, sorted_entries: Iterable[Any]) -> Iterator[str]:
        for entry in sorted_entries:
            persons = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [_surname(person) for person in persons]
            # As the text cites: "and others" stays (BibTeX's "others" is a name to pybtex).
            who = f"{names[0]} et al." if len(names) > 2 else " and ".join(names) or entry.key
            yield f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(UnsrtStyle):
    """pybtex's unsrt entries, sorted by author, year and title, with author-year labels."""

    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


def setup(app: Sphinx) -> dict[str, Any]:
    register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
