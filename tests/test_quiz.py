"""convlstm_lib.quiz: the questions' format, what is refused, and what a notebook displays.

The questions' behaviour in a browser (feedback on a wrong and a right answer, the keyboard) is
tested on the built site, in tests/test_site.py.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from convlstm_lib.quiz import ask, choice, number


def _numeric_verdict(question: dict, typed: float) -> tuple[bool, str]:
    """What jupyterquiz's numeric.js answers to ``typed``: the first answer that matches."""
    for answer in question["answers"]:
        if "value" in answer and typed == answer["value"]:
            return answer["correct"], answer["feedback"]
        if "range" in answer and answer["range"][0] <= typed < answer["range"][1]:
            return answer["correct"], answer["feedback"]
    raise AssertionError(f"no answer matches {typed}")


def test_choice_marks_the_right_answers():
    q = choice("Which?", {"a": "yes"}, {"b": "no: b is ...", "c": "no: c is ..."})
    assert q["type"] == "multiple_choice"
    assert sorted((a["answer"], a["correct"], a["feedback"]) for a in q["answers"]) == [
        ("a", True, "yes"),
        ("b", False, "no: b is ..."),
        ("c", False, "no: c is ..."),
    ]
    assert choice("Which?", {"a": "1", "b": "2"}, {"c": "3"})["type"] == "many_choice"
    assert choice("Which?", {"a": "1"}, {}, code="x < 1")["code"] == "x &lt; 1"


def test_choice_mixes_the_answers_the_same_way_every_time():
    def first(question: str) -> str:
        q = choice(question, {"right": "yes"}, {"wrong 1": "no", "wrong 2": "no", "wrong 3": "no"})
        return q["answers"][0]["answer"]

    questions = [f"Question {n}?" for n in range(20)]
    assert [first(q) for q in questions] == [first(q) for q in questions]
    # Not always first: with 4 answers, "right" leads in about a quarter of 20 questions.
    assert 0 < sum(first(q) == "right" for q in questions) < 20


def test_text_is_html_with_markdown_code():
    q = choice("Is `h < 1`?", {"Yes: `tanh` & `o`": "Right: |h| < 1."}, {})
    assert q["question"] == "Is <code>h &lt; 1</code>?"
    assert q["answers"][0]["answer"] == "Yes: <code>tanh</code> &amp; <code>o</code>"
    assert q["answers"][0]["feedback"] == "Right: |h| &lt; 1."
    assert number("`len(x)`, with $x$?", 3)["question"] == "<code>len(x)</code>, with $x$?"


@pytest.mark.parametrize(
    ("right", "wrong", "message"),
    [
        ({}, {"b": "no"}, "expected at least one right answer, got none"),
        ({"a": "yes"}, {"a": "no"}, "expected each answer right or wrong, got both for {'a'}"),
    ],
)
def test_choice_refuses_what_cannot_be_answered(right, wrong, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        choice("Which?", right, wrong)


def test_choice_refuses_answers_without_feedback():
    with pytest.raises(TypeError, match="choice: expected the feedback on 'a' to be a non-empty"):
        choice("Which?", {"a": ""}, {})
    with pytest.raises(TypeError, match="choice: expected question to be a non-empty str"):
        choice("", {"a": "yes"}, {})


@pytest.mark.parametrize("value", [12, 12.0, torch.tensor(12), 150016])
def test_number_exact_integers_stay_integers(value):
    q = number("How many?", value)
    assert q["type"] == "numeric"
    assert q["answers"][0] == {"value": int(value), "correct": True, "feedback": "Right."}
    assert isinstance(q["answers"][0]["value"], int)
    assert _numeric_verdict(q, int(value))[0]
    assert _numeric_verdict(q, int(value) - 1) == (False, "Too low: try again.")
    assert _numeric_verdict(q, int(value) + 1) == (False, "Too high: try again.")


def test_number_ranges_survive_json_stringify():
    # jupyterquiz passes the answers through JSON.stringify, where infinity becomes null.
    q = number("How many?", -3)
    assert all(math.isfinite(end) for answer in q["answers"][1:] for end in answer["range"])
    assert _numeric_verdict(q, -1e300) == (False, "Too low: try again.")
    assert _numeric_verdict(q, 1e300) == (False, "Too high: try again.")


def test_number_with_a_tolerance_accepts_both_ends_and_nothing_beyond():
    q = number("How much?", 0.25, tolerance=0.05, right="yes", low="low", high="high")
    assert _numeric_verdict(q, 0.2)[0] and _numeric_verdict(q, 0.3)[0]
    assert _numeric_verdict(q, 0.25) == (True, "yes")
    assert _numeric_verdict(q, 0.1999) == (False, "low")
    assert _numeric_verdict(q, 0.3001) == (False, "high")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"value": math.nan}, ValueError, "number: expected a finite value, got nan"),
        ({"value": 1.0, "tolerance": -1}, ValueError, "expected a finite tolerance >= 0, got -1"),
        ({"value": True}, TypeError, "number: expected a number, got True"),
    ],
)
def test_number_refuses_what_cannot_be_typed(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        number("How many?", **kwargs)


def test_ask_displays_the_quiz_once_the_page_has_loaded(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.extend(objects))
    questions = (number("How many?", 3), choice("Which?", {"a": "yes"}, {"b": "no"}))
    ask(*questions)
    html, script = shown
    quiz_id = re.search(r'<div id="(quiz[0-9a-f]{12})"', html.data).group(1)
    assert f"#{quiz_id}" in html.data and "--jq-correct-color" in html.data
    # The questions travel as JSON inside the script, in the order given.
    embedded = re.search(rf"var questions{quiz_id}=(\[.*?\]);\n", script.data).group(1)
    assert json.loads(embedded) == json.loads(json.dumps(list(questions)))
    # jupyterquiz's code is inlined (nothing is fetched) and starts only after the page's load,
    # when the site's own MathJax has loaded; it sees a MathJax only if that one can typeset, so
    # its CDN fallback is never taken (tests/test_lab.py checks that in JupyterLab).
    assert "function show_questions" in script.data
    assert script.data.index('addEventListener("load", start)') > script.data.index("try_show")
    assert script.data.index("const MathJax = window.MathJax") < script.data.index(
        "MathJax.version"
    )
    # Same questions, same id: the built page does not change from build to build.
    shown.clear()
    ask(*questions)
    assert re.search(r'<div id="(quiz[0-9a-f]{12})"', shown[0].data).group(1) == quiz_id


@pytest.mark.parametrize(
    ("questions", "error", "message"),
    [
        ((), ValueError, "ask: expected at least one question, got none"),
        (("How many?",), TypeError, "ask: expected questions from choice() or number()"),
    ],
)
def test_ask_refuses_what_is_not_a_question(questions, error, message):
    with pytest.raises(error, match=re.escape(message)):
        ask(*questions)
