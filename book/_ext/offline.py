"""Keep every page of the book self-contained: nothing loads from another host.

The widget and MathJax scripts come from ``vendor/`` (``tools/vendor_assets.sh``). What is
left is HTML that notebook outputs carry in themselves: matplotlib's jshtml animations link
Font Awesome 4 from a CDN for their button icons. The theme already ships Font Awesome, whose
script draws those ``<i class="fa fa-play">`` icons, so the link is dropped. Anything else that
a page would fetch from another host as it loads (a script, stylesheet, font, frame or image) is
a warning, which the strict build (``-W``) turns into a failure. The browser tests
(``tests/test_site.py``) check the same on the built pages, with the network blocked.
"""

from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

__all__ = ["setup"]

logger = logging.getLogger(__name__)

# Links that notebook outputs carry and the theme makes redundant.
_REDUNDANT_LINKS = re.compile(
    r'<link\s+rel="stylesheet"\s+href="https://maxcdn\.bootstrapcdn\.com/font-awesome/'
    r'[0-9.]+/css/font-awesome\.min\.css"\s*/?>'
)
# What makes the browser fetch from another host as the page loads. Links (<a href>) are not
# matched: the reader follows those, the page does not load them.
_REMOTE_ASSET = re.compile(
    r"<(?:script|link|iframe|img|video|audio|source)\b[^>]*\b(?:src|href)\s*=\s*"
    r'["\']((?:https?:)?//[^"\']+)'
    r"|@import\s+url\(\s*[\"']?((?:https?:)?//[^\"')]+)"
    r"|@font-face[^}]*url\(\s*[\"']?((?:https?:)?//[^\"')]+)",
    re.IGNORECASE,
)


def _remote(uri: Any) -> bool:
    """Whether ``uri`` names another host (``https://...``, ``//...``), not a site path."""
    return re.match(r"(?:[a-z][a-z0-9+.-]*:)?//", str(uri), re.IGNORECASE) is not None


def _dedupe_scripts(scripts: list[Any]) -> None:
    """Keep the first of identical scripts: sphinx-thebe's inline configuration reaches the
    page twice (once with filename None, once with ""), and its second ``const`` is an error."""
    seen = set()
    unique = []
    for script in scripts:
        key = (
            str(getattr(script, "filename", script) or ""),
            tuple(sorted(getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def _check_page(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    if isinstance(context.get("script_files"), list):
        _dedupe_scripts(context["script_files"])
    body = context.get("body")
    if body:
        body = _REDUNDANT_LINKS.sub("", body)
        context["body"] = body
        for match in _REMOTE_ASSET.finditer(body):
            url = next(group for group in match.groups() if group)
            logger.warning(
                "offline: expected every asset of %s to come from the site, got %s",
                pagename,
                url,
                location=pagename,
            )
    assets = [*context.get("script_files", []), *context.get("css_files", [])]
    for asset in assets:
        filename = getattr(asset, "filename", asset)
        if filename and _remote(filename):
            logger.warning(
                "offline: expected every asset of %s to come from the site, got %s",
                pagename,
                filename,
                location=pagename,
            )


def setup(app: Sphinx) -> dict[str, Any]:
    # After myst-nb (priority 500) has added the page's widget scripts.
    app.connect("html-page-context", _check_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
