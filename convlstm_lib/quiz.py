"""Questions the reader answers on the page before the chapter shows the answer.

Built on jupyterquiz (from PyPI, MIT licence), whose questions run in the
browser: on the website, where no kernel runs, as in JupyterLab and on Colab. The answers are
the chapter's own results, passed in from the run (``number("How many ...", n_params)``), so a
question cannot go stale when the code changes. Imported on its own, like
``convlstm_lib.plot``, so that the library itself does not need IPython or jupyterquiz.

Examples::

    >>> from convlstm_lib.quiz import choice, number
    >>> q = number("How many parameters has the cell?", 4 * 64 * (1 + 64) * 9 + 4 * 64)
    >>> q["type"], q["answers"][0]["value"]
    ('numeric', 150016)
    >>> q = choice("What does the stack return first?", {"every step's h": "Yes."}, {})
    >>> [answer["correct"] for answer in q["answers"]]
    [True]
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import random
import re
import sys
from collections.abc import Mapping

__all__ = ["ask", "choice", "number"]

# The quiz boxes in the site's colours (book/_static/book.css has the keyboard focus ring):
# every variable jupyterquiz's stylesheet reads.
_COLOURS = {
    "--jq-multiple-choice-bg": "#1f4e79",
    "--jq-mc-button-bg": "#fafafa",
    "--jq-mc-button-border": "#e0e0e0",
    "--jq-mc-button-inset-shadow": "#555555",
    "--jq-many-choice-bg": "#1f4e79",
    "--jq-numeric-bg": "#1f4e79",
    "--jq-numeric-input-bg": "#e8e8e8",
    "--jq-numeric-input-label": "#101010",
    "--jq-numeric-input-shadow": "#999999",
    "--jq-string-bg": "#1f4e79",
    "--jq-incorrect-color": "#b3261e",
    "--jq-correct-color": "#1a7f37",
    "--jq-text-color": "#fafafa",
    "--jq-link-color": "#bcd7ff",
}
# jupyterquiz typesets its text with the page's MathJax, and where that MathJax has no
# ``typeset`` (JupyterLab's, or the site's before it has loaded) it fetches another from a CDN
# and replaces the page's. So the quiz starts once the page has loaded (at once where it already
# has: JupyterLab, Colab) and sees MathJax only where it can typeset; elsewhere its maths stays
# as typed.
_ONCE_LOADED = """(() => {{
const start = () => {{
const MathJax = window.MathJax && (typeof window.MathJax.typeset === "function"
  || window.MathJax.Hub) ? window.MathJax : undefined;
{script}
}};
if (document.readyState === "complete") start();
else window.addEventListener("load", start);
}})();
"""


# jupyterquiz writes its text into the page as HTML, and turns only $...$ and links into
# something else; the chapters write `code` as in Markdown.
_CODE = re.compile(r"`([^`]+)`")
# The ends of a number's wrong ranges: JSON has no infinity, and jupyterquiz passes the ranges
# through JSON.stringify, which would turn one into null (a range that nothing falls in).
_FAR = sys.float_info.max


def _text(value: object, owner: str, name: str) -> str:
    """``value`` as jupyterquiz's HTML: escaped, with `code` in <code>."""
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{owner}: expected {name} to be a non-empty str, got {value!r}")
    parts = _CODE.split(value)  # text, code, text, code, ..., text
    return "".join(
        f"<code>{html.escape(part)}</code>" if index % 2 else html.escape(part, quote=False)
        for index, part in enumerate(parts)
    )


def choice(
    question: str,
    right: Mapping[str, str],
    wrong: Mapping[str, str],
    *,
    code: str | None = None,
) -> dict[str, object]:
    """A multiple-choice question: the answers the reader picks from, each with its feedback.

    Args:
        question: what the reader is asked (Markdown links and ``$...$`` maths are allowed).
        right: the correct answers, each mapped to the feedback shown when it is picked. With
            more than one, the reader must find them all.
        wrong: the wrong answers, each mapped to its feedback: say why it is wrong.
        code: a snippet shown under the question. Default: ``None``.

    Returns:
        The question in jupyterquiz's format, for :func:`ask`. The answers come in an order
        drawn from the question's text: mixed, so the right one is not always first, and the
        same at every build.
    """
    _text(question, "choice", "question")
    if not right:
        raise ValueError("choice: expected at least one right answer, got none")
    overlap = set(right) & set(wrong)
    if overlap:
        raise ValueError(f"choice: expected each answer right or wrong, got both for {overlap}")
    answers = []
    for correct, options in ((True, right), (False, wrong)):
        for answer, feedback in options.items():
            answers.append(
                {
                    "answer": _text(answer, "choice", "an answer"),
                    "correct": correct,
                    "feedback": _text(feedback, "choice", f"the feedback on {answer!r}"),
                }
            )
    random.Random(hashlib.sha256(question.encode()).digest()).shuffle(answers)
    kind = "many_choice" if len(right) > 1 else "multiple_choice"
    asked = {"question": _text(question, "choice", "question"), "type": kind, "answers": answers}
    if code is not None:
        if not isinstance(code, str) or not code.strip():
            raise TypeError(f"choice: expected code to be a non-empty str, got {code!r}")
        asked["code"] = html.escape(code, quote=False)
    return asked


def number(
    question: str,
    value: float,
    *,
    tolerance: float = 0.0,
    right: str = "Right.",
    low: str = "Too low: try again.",
    high: str = "Too high: try again.",
) -> dict[str, object]:
    """A question whose answer is a number the reader types, then Enter.

    Args:
        question: what the reader is asked.
        value: the answer, from the chapter's own run.
        tolerance: how far from ``value`` an answer may be and still count as right. Default:
            ``0.0`` (exactly ``value``).
        right: the feedback on a right answer; say what the number means. Default: ``"Right."``
        low: the feedback on an answer below ``value - tolerance``. Default: "Too low: try again."
        high: the feedback on an answer above ``value + tolerance``. Default: "Too high: try
            again."

    Returns:
        The question in jupyterquiz's format, for :func:`ask`.
    """
    _text(question, "number", "question")
    if isinstance(value, bool) or not isinstance(float(value), float):
        raise TypeError(f"number: expected a number, got {value!r}")
    value = float(value)  # a Python, NumPy or torch number
    if not math.isfinite(value):
        raise ValueError(f"number: expected a finite value, got {value}")
    if value.is_integer():
        value = int(value)  # shown and compared as 12, not 12.0
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"number: expected a finite tolerance >= 0, got {tolerance}")
    if tolerance == 0:
        # jupyterquiz compares typed text as a number: 12 and 12.0 both match 12.
        answers = [{"value": value, "correct": True, "feedback": _text(right, "number", "right")}]
    else:
        # Ranges are half-open, [a, b): widen the top by one part in 1e12 to include it.
        top = value + tolerance
        top += abs(top) * 1e-12 or 1e-12
        answers = [
            {
                "range": [value - tolerance, top],
                "correct": True,
                "feedback": _text(right, "number", "right"),
            }
        ]
    answers += [
        {
            "range": [-_FAR, value - tolerance],
            "correct": False,
            "feedback": _text(low, "number", "low"),
        },
        {
            "range": [value + tolerance, _FAR],
            "correct": False,
            "feedback": _text(high, "number", "high"),
        },
    ]
    return {
        "question": _text(question, "number", "question"),
        "type": "numeric",
        "answers": answers,
    }


def ask(*questions: Mapping[str, object]) -> None:
    """Show ``questions`` (from :func:`choice` and :func:`number`) as a quiz below the cell.

    The page reads the same for everyone (the answers' order is fixed, see :func:`choice`);
    feedback appears as soon as the reader picks an answer (a click, or the arrow keys and
    Space) or types a number and presses Enter.
    """
    if not questions:
        raise ValueError("ask: expected at least one question, got none")
    for question in questions:
        if not isinstance(question, Mapping) or "type" not in question:
            raise TypeError(f"ask: expected questions from choice() or number(), got {question!r}")
    from IPython.display import HTML, Javascript, display
    from jupyterquiz.dynamic.loader import load_questions_script
    from jupyterquiz.dynamic.renderer import build_script, build_styles, render_div

    # An id from the questions: the built page is the same from build to build.
    digest = hashlib.sha256(json.dumps(questions, sort_keys=True).encode()).hexdigest()
    quiz_id = "quiz" + digest[:12]
    prefix, static, url = load_questions_script(list(questions), quiz_id)
    div = render_div(quiz_id, False, False, False, 1_000_000, 640, 10, "left")
    display(HTML(div + "</div>" + build_styles(quiz_id, _COLOURS)))
    script = build_script(prefix, static, url, quiz_id, True)
    display(Javascript(_ONCE_LOADED.format(script=script)))
