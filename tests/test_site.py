"""The built website in a real browser: Debian's Chromium, driven by Playwright, offline.

These tests read ``_build/html`` (``make book`` first; ``make test`` runs them after the build,
``make browser`` alone). The site is served on 127.0.0.1 and every request for another host is
blocked, so the pages must work with the network unplugged. Which pages have animations or
widgets is read from the built HTML, so new chapters are covered without editing this file.

Environment:
    BOOK_SITE: the built site to test. Default: ``_build/html`` of this repository. Its
        ``_toc.yml`` is the one two directories up (the book's root).
    CHROMIUM: the browser to drive. Default: ``/usr/bin/chromium`` (``make chromium``).

Screenshots of every page land in ``screenshots/`` next to the site (``_build/screenshots``).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sphinx_external_toc.parsing import parse_toc_yaml

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("BOOK_SITE", ROOT / "_build" / "html")).resolve()
BOOK_ROOT = SITE.parents[1]
SCREENSHOTS = SITE.parent / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 60_000  # page loads: generous, the machines that run this are shared and slow
STEP_TIMEOUT_MS = 15_000  # for a page that has loaded to react (render, play, follow a control)
ASSET_TYPES = {"script", "stylesheet", "font"}

# The pages of the table of contents, in reading order ("book/intro", "notebooks/02_...").
PAGES = list(parse_toc_yaml(BOOK_ROOT / "_toc.yml"))


def _pages_containing(marker: str) -> list[str]:
    """The TOC pages whose built HTML contains ``marker`` (none before the site is built)."""
    found = []
    for page in PAGES:
        html = SITE / f"{page}.html"
        if html.is_file() and marker in html.read_text(encoding="utf-8"):
            found.append(page)
    return found


def _or_skip(pages: list[str], what: str) -> list[object]:
    """``pages`` to parametrize over, or one skipped case that says none has ``what``."""
    return pages or [pytest.param(None, marks=pytest.mark.skip(reason=f"no page has {what}"))]


# matplotlib's jshtml animations, and ipywidgets views embedded by myst-nb.
ANIMATED_PAGES = _pages_containing('<div class="animation">')
WIDGET_PAGES = _pages_containing("application/vnd.jupyter.widget-view+json")
# Chapter 06's live explainer (book/_static/explainer/explainer.js), running ONNX models.
EXPLAINER_PAGES = _pages_containing('<div class="convlstm-explainer"')
EXPLAINER_READY_MS = 90_000  # the WebAssembly runtime (14 MB) compiles first, on a slow machine

# Everything a page shows, apart from `control`: visible text, image sources and canvases
# inside the widget areas. Moving a control must change it.
FINGERPRINT_JS = """(control) => {
  const parts = [];
  for (const area of document.querySelectorAll(".widget-subarea")) {
    const walker = document.createTreeWalker(area, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (control && control.contains(node)) continue;
      const element = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
      if (!element.checkVisibility()) continue;
      if (node.nodeType === Node.TEXT_NODE) parts.push(node.textContent.trim());
      else if (element.tagName === "IMG") parts.push(element.currentSrc || element.src);
      else if (element.tagName === "CANVAS") parts.push(element.toDataURL());
    }
  }
  return parts.filter(Boolean).join("\\n");
}"""

# Everything in the article that runs past its box: a code block or output that scrolls
# sideways (its lines are longer than the block is wide), a table or an image wider than the
# column it sits in. Folded cells (hide-input) are skipped while folded. Chapter 06's explainer
# lays itself out and is tested on its own.
OVERFLOW_JS = """() => {
  const article = document.querySelector("article");
  const column = article.getBoundingClientRect();
  const found = [];
  const say = (element, what, width, room) => {
    const text = (element.innerText || element.getAttribute("alt") || element.src || "")
      .trim().split("\\n").find((line) => line.length > 0) || "";
    found.push(`${what} ${Math.round(width)} px in ${Math.round(room)} px: ${text.slice(0, 90)}`);
  };
  for (const element of article.querySelectorAll("pre, table, img")) {
    if (!element.checkVisibility() || element.closest(".convlstm-explainer")) continue;
    if (element.tagName === "PRE") {
      if (element.scrollWidth > element.clientWidth + 1)
        say(element, "code or output", element.scrollWidth, element.clientWidth);
      continue;
    }
    const box = element.getBoundingClientRect();
    const holder = element.parentElement;
    const room = Math.min(column.right, holder.getBoundingClientRect().right) - box.left;
    const width = Math.max(box.width, element.scrollWidth);
    if (width > room + 1) say(element, element.tagName.toLowerCase(), width, room);
    else if (holder.scrollWidth > holder.clientWidth + 1)
      say(element, element.tagName.toLowerCase(), holder.scrollWidth, holder.clientWidth);
  }
  return found;
}"""

# Wait until MathJax (where a page loads it) has typeset, and the web fonts are in.
SETTLE_JS = """async () => {
  if (window.MathJax && window.MathJax.startup) await window.MathJax.startup.promise;
  await document.fonts.ready;
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    """The built site, served on a free port of 127.0.0.1 by a thread of this process."""
    if not (SITE / "index.html").is_file():
        pytest.fail(f"test_site: expected a built site at {SITE}, got none: run `make book`")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The screenshots folder, emptied once per run so that it shows the current site only.

    JupyterLab's screenshot (``jupyterlab.png``, from tests/test_lab.py, which runs first) is not
    the site's, and stays.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.iterdir():
        if old.name == "jupyterlab.png":
            continue
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    return SCREENSHOTS


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.is_file():
        pytest.fail(f"test_site: expected Chromium at {CHROMIUM}, got none: run `make chromium`")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@dataclass
class Visit:
    """One page load and everything that went wrong during it."""

    page: object
    blocked: list[tuple[str, str]] = field(default_factory=list)  # (resource type, URL)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        assets = [f"{kind} {url}" for kind, url in self.blocked if kind in ASSET_TYPES]
        others = [f"{kind} {url}" for kind, url in self.blocked if kind not in ASSET_TYPES]
        return (
            [f"script, style or font from another host: {item}" for item in assets]
            + [f"request to another host: {item}" for item in others]
            + [f"console error: {text}" for text in self.console_errors]
            + [f"failed request: {text}" for text in self.failed_requests]
        )


@pytest.fixture
def visit(browser: object, base_url: str) -> Iterator[object]:
    """``visit(path)`` opens a page of the site in a fresh context and returns its Visit."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    visits: list[Visit] = []

    def route(route: object) -> None:
        url = route.request.url
        if url.startswith(base_url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            visits[-1].blocked.append((route.request.resource_type, url))
            route.abort("blockedbyclient")

    context.route("**/*", route)

    def open_page(path: str) -> Visit:
        page = context.new_page()
        record = Visit(page)
        visits.append(record)
        page.on(
            "console",
            lambda message: message.type == "error" and record.console_errors.append(message.text),
        )
        page.on("pageerror", lambda error: record.console_errors.append(f"uncaught {error}"))
        page.on(
            "requestfailed",
            lambda request: (
                request.url.startswith(base_url)
                and record.failed_requests.append(f"{request.url} ({request.failure})")
            ),
        )
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and record.failed_requests.append(f"{response.url} (HTTP {response.status})")
            ),
        )
        page.goto(base_url + path, wait_until="load")
        page.wait_for_load_state("networkidle")
        page.evaluate(SETTLE_JS)
        return record

    yield open_page
    context.close()


def _assert_clean(record: Visit) -> None:
    problems = record.problems()
    assert not problems, "\n".join(problems)


def _wait_for_widgets(record: Visit) -> int:
    """Wait until every widget view of the page has rendered; return how many there are."""
    page = record.page
    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    try:
        page.wait_for_function(
            """(views) => {
              const areas = document.querySelectorAll(".widget-subarea");
              return areas.length >= views
                && [...areas].every((area) => area.querySelector(".jupyter-widgets"));
            }""",
            arg=views,
            timeout=STEP_TIMEOUT_MS,
        )
    except playwright_api.TimeoutError:
        rendered = page.locator(".widget-subarea .jupyter-widgets").count()
        problems = "\n".join(record.problems())
        pytest.fail(f"expected {views} widget views to render, got {rendered}\n{problems}")
    return views


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_offline_without_errors(visit: object, screenshots: Path, path: str) -> None:
    record = visit(f"{path}.html")
    if path in WIDGET_PAGES:
        _wait_for_widgets(record)
    screenshot = screenshots / f"{path}.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    record.page.screenshot(path=screenshot, full_page=True)
    _assert_clean(record)
    title = record.page.locator("article h1").first
    assert title.is_visible(), f"{path}: expected a visible H1, got none"


# A cell whose last line returns an object prints its repr: "<torch._C.Generator object at
# 0x7f...>" on the page. (Anything on stderr already fails the build: _config.yml.)
STRAY_REPR = re.compile(r"&lt;[\w.]+ object at 0x[0-9a-f]+&gt;")


@pytest.mark.parametrize("path", PAGES)
def test_no_stray_object_reprs(path: str) -> None:
    html = (SITE / f"{path}.html").read_text(encoding="utf-8")
    assert not STRAY_REPR.findall(html), (
        f"{path}: expected no object reprs, got {STRAY_REPR.findall(html)}"
    )


@pytest.mark.parametrize("path", PAGES)
def test_nothing_runs_past_its_box(visit: object, path: str) -> None:
    record = visit(f"{path}.html")
    if path in WIDGET_PAGES:
        _wait_for_widgets(record)
    _open_solutions(record.page)  # what a reader sees once they open them must fit too
    overflowing = record.page.evaluate(OVERFLOW_JS)
    assert not overflowing, f"{path}: expected everything to fit its box, got\n" + "\n".join(
        overflowing
    )


@pytest.mark.parametrize("path", _or_skip(ANIMATED_PAGES, "a jshtml animation"))
def test_animation_plays(visit: object, path: str) -> None:
    record = visit(f"{path}.html")
    animations = record.page.locator("div.animation")
    assert animations.count() > 0, f"{path}: expected a jshtml animation, got none"
    for index in range(animations.count()):
        animation = animations.nth(index)
        image = animation.locator("img").first
        before = image.get_attribute("src")
        animation.locator('button[title="Play"]').click()
        # The shown frame is the <img>'s source; playing must replace it.
        try:
            record.page.wait_for_function(
                "([image, before]) => image.src !== before",
                arg=[image.element_handle(), before],
                timeout=STEP_TIMEOUT_MS,
            )
        except playwright_api.TimeoutError:
            pytest.fail(f"{path}: pressing play on animation {index} left its frame unchanged")
        animation.locator('button[title="Pause"]').click()
    _assert_clean(record)


def _control_actions(page: object) -> list[tuple[str, object]]:
    """Every control a reader can move, with the element to act on: sliders, drop-downs, Play."""
    controls = []
    for kind, selector in [
        ("slider", ".widget-subarea .noUi-handle"),
        ("dropdown", ".widget-subarea .widget-dropdown select"),
        ("play", ".widget-subarea .widget-play button:first-child"),
    ]:
        locator = page.locator(selector)
        controls += [(kind, locator.nth(index)) for index in range(locator.count())]
    return controls


def _move(kind: str, control: object) -> None:
    if kind == "slider":
        at_end = control.get_attribute("aria-valuenow") == control.get_attribute("aria-valuemax")
        control.focus()
        control.press("ArrowLeft" if at_end else "ArrowRight")
    elif kind == "dropdown":
        values = control.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
        current = control.input_value()
        control.select_option(next(value for value in values if value != current))
    else:
        control.click()


@pytest.mark.parametrize("path", _or_skip(WIDGET_PAGES, "widgets"))
def test_widgets_render_and_respond(visit: object, path: str) -> None:
    record = visit(f"{path}.html")
    page = record.page
    views = _wait_for_widgets(record)
    areas = page.locator(".widget-subarea")
    for index in range(areas.count()):
        box = areas.nth(index).bounding_box()
        assert box and box["width"] > 0 and box["height"] > 0, (
            f"{path}: expected widget view {index} of {views} to be visible, got {box}"
        )
    # Pages whose only widgets are tqdm's progress bars have nothing to move.
    for kind, control in _control_actions(page):
        # The control's own view (its readout, its handle) does not count as a change.
        own_view = control.evaluate_handle("(element) => element.closest('.jupyter-widgets')")
        before = page.evaluate(FINGERPRINT_JS, own_view)
        _move(kind, control)
        try:
            page.wait_for_function(
                f"([control, before]) => ({FINGERPRINT_JS})(control) !== before",
                arg=[own_view, before],
                timeout=STEP_TIMEOUT_MS,
            )
        except playwright_api.TimeoutError:
            pytest.fail(f"{path}: moving a {kind} changed nothing else that the page shows")
    _assert_clean(record)


# What the explainer shows, canvas by canvas, grouped by the views the page names.
EXPLAINER_VIEWS_JS = """(root) => {
  const views = {};
  for (const canvas of root.querySelectorAll("canvas[data-view]")) {
    const name = canvas.dataset.view;
    views[name] = (views[name] || "") + canvas.toDataURL() + "|";
  }
  return views;
}"""


def _explainer(record: Visit) -> object:
    """The page's explainer once it has run its models and its check, or a failure saying why."""
    root = record.page.locator(".convlstm-explainer").first
    try:
        record.page.wait_for_function(
            "(root) => root.dataset.ready === 'true' || root.dataset.ready === 'failed'",
            arg=root.element_handle(),
            timeout=EXPLAINER_READY_MS,
        )
    except playwright_api.TimeoutError:
        pytest.fail(
            "explainer: expected it to start, got no answer\n" + "\n".join(record.problems())
        )
    assert root.get_attribute("data-ready") == "true", (
        f"explainer: expected it to start, got {root.inner_text()}\n" + "\n".join(record.problems())
    )
    return root


def _after_run(record: Visit, root: object, action) -> dict[str, str]:
    """Do ``action``, wait for the model run it starts, and return the views after it."""
    runs = int(root.get_attribute("data-runs"))
    action()
    record.page.wait_for_function(
        "([root, runs]) => Number(root.dataset.runs) > runs",
        arg=[root.element_handle(), runs],
        timeout=STEP_TIMEOUT_MS,
    )
    return root.evaluate(EXPLAINER_VIEWS_JS)


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in after if after[name] != before.get(name)}


@pytest.mark.parametrize("path", _or_skip(EXPLAINER_PAGES, "the explainer"))
def test_explainer_runs_the_models_in_the_page(visit: object, screenshots: Path, path: str) -> None:
    record = visit(f"{path}.html")
    page = record.page
    root = _explainer(record)
    # The built-in example, run here by every model, against torch's outputs at build time.
    check = root.locator(".explainer-check")
    worst = float(check.get_attribute("data-max-abs-diff"))
    assert worst <= 1e-4, f"explainer: expected the page to match torch to 1e-4, got {worst}"
    # Tall enough for the whole explainer: an element screenshot taller than the viewport is
    # stitched from scrolled views, with the theme's sticky header across it.
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1800})
    root.scroll_into_view_if_needed()
    root.screenshot(path=screenshots / "explainer-preset.png")

    # A stroke drawn with the mouse, across the canvas: the input changes.
    canvas = root.locator("canvas.explainer-draw")
    box = canvas.bounding_box()
    before = root.evaluate(EXPLAINER_VIEWS_JS)

    def draw() -> None:
        page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.3 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.5 * box["height"], steps=12)
        page.mouse.up()

    drawn = _after_run(record, root, draw)
    assert {"strip", "input"} <= _changed(before, drawn), "a drawn stroke left the input as it was"

    # A step: the gates and states, and the prediction, move on.
    step = root.locator('button[data-action="step"]')
    stepped_at = root.get_attribute("data-step")
    step.click()
    page.wait_for_function(
        "([root, t]) => root.dataset.step !== t", arg=[root.element_handle(), stepped_at]
    )
    stepped = root.evaluate(EXPLAINER_VIEWS_JS)
    assert {"inside", "prediction", "input"} <= _changed(drawn, stepped), (
        "a step left the gates, the states or the prediction as they were"
    )

    # Another model, on the same movie: another result.
    select = root.locator("select")
    values = select.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
    switched = _after_run(
        record, root, lambda: select.select_option(next(v for v in values if v != values[0]))
    )
    assert "prediction" in _changed(stepped, switched), "switching the model changed nothing"
    assert "input" not in _changed(stepped, switched)

    # The keyboard: a slider moves the shape, and Space on the canvas toggles a pixel.
    slider = root.locator('input[data-axis="right"]')
    slider.focus()
    keyed = _after_run(record, root, lambda: slider.press("ArrowLeft"))
    assert "strip" in _changed(switched, keyed), "a slider moved by the keyboard changed nothing"
    canvas.focus()
    canvas.press("ArrowDown")
    toggled = _after_run(record, root, lambda: canvas.press(" "))
    assert "strip" in _changed(keyed, toggled), "Space on the drawing canvas changed nothing"
    root.screenshot(path=screenshots / "explainer-drawn.png")
    _assert_clean(record)


@pytest.mark.parametrize("path", _or_skip(EXPLAINER_PAGES, "the explainer"))
def test_explainer_says_so_where_it_cannot_run(browser: object, path: str) -> None:
    # Opened as a file, the page cannot load the module or the models: the text says so.
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto((SITE / f"{path}.html").as_uri(), wait_until="load")
        fallback = page.locator(".convlstm-explainer .explainer-fallback")
        assert fallback.is_visible() and "cannot" in fallback.inner_text()
    finally:
        context.close()


# Every chapter's questions (convlstm_lib.quiz, on jupyterquiz) and its exercises' solutions
# (sphinx-exercise), folded until the reader opens them.
CHAPTERS = [page for page in PAGES if page.startswith("notebooks/")]
QUIZ_PAGES = _pages_containing("data-shufflequestions=")
SOLUTION_PAGES = _pages_containing('<div class="solution dropdown')


def test_every_chapter_asks_questions_and_has_solutions() -> None:
    assert CHAPTERS, "expected chapters in _toc.yml, got none"
    assert set(CHAPTERS) <= set(QUIZ_PAGES), (
        f"expected questions on every chapter, missing on {sorted(set(CHAPTERS) - set(QUIZ_PAGES))}"
    )
    assert set(CHAPTERS) <= set(SOLUTION_PAGES), (
        f"expected solutions on every chapter, missing on "
        f"{sorted(set(CHAPTERS) - set(SOLUTION_PAGES))}"
    )


def _open_solutions(page: object) -> None:
    """Open every folded solution of the page, as a reader would, one click each."""
    for button in page.locator("div.solution button.toggle-button").all():
        button.click()
    for solution in page.locator("div.solution").all():
        cell = solution.locator("div.cell").first
        if cell.count():
            cell.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)


def _feedback(question: object) -> tuple[str, str]:
    """The question's feedback: its verdict (correct, incorrect or none yet) and its text."""
    feedback = question.locator(".Feedback")
    classes = (feedback.get_attribute("class") or "").split()
    verdict = "correct" if "correct" in classes else "incorrect" if "incorrect" in classes else ""
    return verdict, " ".join(feedback.inner_text().split())


def _as_text(page: object, markup: str) -> str:
    """What the page shows for jupyterquiz's feedback ``markup`` (HTML, `code` in <code>)."""
    text = page.evaluate(
        "(markup) => { const t = document.createElement('template'); t.innerHTML = markup;"
        " return t.content.textContent; }",
        markup,
    )
    return " ".join(text.split())


def _same_feedback(page: object, shown: str, markup: str) -> bool:
    """Whether ``shown`` is ``markup``'s text; with $maths$, which MathJax typesets, its prose."""
    if "$" not in markup:
        return shown == _as_text(page, markup)
    prose = [part for index, part in enumerate(markup.split("$")) if index % 2 == 0]
    return all(_as_text(page, part) in shown for part in prose if part.strip())


def _typed(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _numeric_answers(question: object) -> tuple[str, str, str]:
    """A right and a wrong number to type, and the feedback the right one should bring."""
    answers = json.loads(question.locator("input.Input-text").get_attribute("data-answers"))
    right = next(answer for answer in answers if answer["correct"])
    value = right["value"] if "value" in right else sum(right["range"]) / 2
    wrong = value + max(
        1.0, abs(value), 2 * (right["range"][1] - right["range"][0]) if "range" in right else 0
    )
    return _typed(value), _typed(wrong), right["feedback"]


def _answer_by_mouse(page: object, question: object) -> None:
    """A wrong answer, then the right one, with the mouse (or typed, for a number)."""
    if question.locator("label.MCButton").count():
        for correct in ("false", "true"):
            choice = question.locator(f'label.MCButton[data-correct="{correct}"]').first
            choice.click()
            verdict, text = _feedback(question)
            assert verdict == ("correct" if correct == "true" else "incorrect"), text
            expected = choice.get_attribute("data-feedback")
            assert _same_feedback(page, text, expected), f"got {text!r}, expected {expected!r}"
        return
    field = question.locator("input.Input-text")
    right, wrong, expected = _numeric_answers(question)
    for typed, verdict in ((wrong, "incorrect"), (right, "correct")):
        field.click()
        field.press_sequentially(typed)
        field.press("Enter")
        assert _feedback(question)[0] == verdict, f"typed {typed}: {_feedback(question)}"
    shown = _feedback(question)[1]
    assert _same_feedback(page, shown, expected), f"got {shown!r}, expected {expected!r}"


def _answer_by_keyboard(page: object, question: object) -> None:
    """The same with the keyboard alone: Tab to the answers, arrows and Space, or type, Enter."""
    first = question.locator("input").first
    # Tab into the question from the focusable element just before it, as a reader would:
    # Shift+Tab finds that element, whatever it is (a link, a fold's <summary>, typeset maths).
    first.focus()
    page.keyboard.press("Shift+Tab")
    assert not first.evaluate("(input) => input === document.activeElement")
    page.keyboard.press("Tab")
    assert first.evaluate("(input) => input === document.activeElement"), (
        "expected Tab to reach the question's first answer"
    )
    if question.locator("label.MCButton").count():
        labels = question.locator("label.MCButton")
        outline = labels.first.evaluate("(label) => getComputedStyle(label).outlineStyle")
        assert outline != "none", "expected a visible focus ring on the focused answer"
        verdicts = []
        page.keyboard.press("Space")
        verdicts.append(_feedback(question)[0])
        for _ in range(labels.count() - 1):
            page.keyboard.press("ArrowDown")
            verdicts.append(_feedback(question)[0])
        correct = [label.get_attribute("data-correct") == "true" for label in labels.all()]
        assert verdicts == ["correct" if ok else "incorrect" for ok in correct]
        return
    right, wrong, _ = _numeric_answers(question)
    for typed, verdict in ((wrong, "incorrect"), (right, "correct")):
        page.keyboard.type(typed)
        page.keyboard.press("Enter")
        assert _feedback(question)[0] == verdict, f"typed {typed}: {_feedback(question)}"
        first.focus()  # jupyterquiz leaves the field after Enter; focusing it clears it


@pytest.mark.parametrize("path", _or_skip(QUIZ_PAGES, "questions"))
def test_questions_answer_wrong_then_right(visit: object, screenshots: Path, path: str) -> None:
    record = visit(f"{path}.html")
    page = record.page
    questions = page.locator(".Quiz")
    questions.first.wait_for()
    expected = len(
        re.findall(
            r'"type": "(?:multiple_choice|many_choice|numeric)"',
            (SITE / f"{path}.html").read_text(encoding="utf-8"),
        )
    )
    assert questions.count() == expected, (
        f"{path}: expected {expected} questions, got {questions.count()}"
    )
    assert expected >= 2, f"{path}: expected at least 2 questions, got {expected}"
    for question in questions.all():
        assert _feedback(question) == ("", ""), f"{path}: expected no verdict before an answer"
    _answer_by_mouse(page, questions.nth(0))
    shot = screenshots / "questions" / f"{Path(path).name}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    questions.nth(0).screenshot(path=shot)  # answered right, after a wrong answer
    _answer_by_keyboard(page, questions.nth(1))
    _assert_clean(record)


@pytest.mark.parametrize("path", _or_skip(SOLUTION_PAGES, "solutions"))
def test_solutions_are_folded_until_opened(visit: object, screenshots: Path, path: str) -> None:
    record = visit(f"{path}.html")
    solutions = record.page.locator("div.solution")
    exercises = record.page.locator("div.exercise")
    assert solutions.count() == exercises.count() >= 3, (
        f"{path}: expected a solution to each of 3 or more exercises, got {exercises.count()} "
        f"exercises and {solutions.count()} solutions"
    )
    for index in range(solutions.count()):
        solution = solutions.nth(index)
        code = solution.locator("div.cell").first
        assert not code.is_visible(), f"{path}: expected solution {index} folded, got it open"
    first = solutions.first
    first.scroll_into_view_if_needed()
    folder = screenshots / "solutions"
    folder.mkdir(parents=True, exist_ok=True)
    first.screenshot(path=folder / f"{Path(path).name}-folded.png")
    first.locator("button.toggle-button").press("Enter")  # the keyboard opens it too
    code = first.locator("div.cell").first
    code.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
    assert first.locator("div.cell_output").first.is_visible(), (
        f"{path}: expected the opened solution to show what its code printed or drew"
    )
    record.page.wait_for_timeout(500)  # the toggle's animation
    first.screenshot(path=folder / f"{Path(path).name}-opened.png")
    _assert_clean(record)


def test_search_finds_convlstm(visit: object, screenshots: Path) -> None:
    record = visit("search.html?q=ConvLSTM")
    results = record.page.locator("#search-results ul.search li")
    results.first.wait_for()
    assert results.count() > 0, "search: expected results for ConvLSTM, got none"
    screenshot = screenshots / "search.png"
    record.page.screenshot(path=screenshot, full_page=True)
    _assert_clean(record)


def test_screenshots_differ_from_page_to_page() -> None:
    """A broken theme renders every page alike; the screenshots of two pages must differ."""
    shots = sorted(SCREENSHOTS.rglob("*.png"))
    if len(shots) < 2:
        pytest.skip("fewer than two screenshots: run with the page tests")
    digests = {hashlib.sha256(shot.read_bytes()).hexdigest() for shot in shots}
    assert len(digests) == len(shots), "expected every page's screenshot to differ, got duplicates"
