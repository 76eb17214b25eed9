"""What an edit changed: the word diff (bot.domain.review) and its mrkdwn rendering (bot.slack.changes)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import DiffRun, PostContent, has_changes, word_diff
from bot.security import register_secrets
from bot.slack.changes import field_diffs, render_diff
from bot.slack.mrkdwn import inert


def test_word_diff_pairs_removed_before_added_and_ignores_spacing() -> None:
    assert word_diff("a b c", "a x c") == (
        DiffRun("same", ("a",)), DiffRun("removed", ("b",)), DiffRun("added", ("x",)), DiffRun("same", ("c",)))
    assert not has_changes(word_diff("a  b\nc", "a b c"))
    assert word_diff("", "") == ()
    assert word_diff("", "new words") == (DiffRun("added", ("new", "words")),)


def test_long_unchanged_runs_collapse_to_their_edges() -> None:
    old = " ".join(f"w{i}" for i in range(40))
    new = old.replace("w20", "CHANGED")
    line = render_diff(word_diff(old, new))
    assert line == "… w16 w17 w18 w19 ~w20~ *CHANGED* w21 w22 w23 w24 …"
    # Short stretches between two changes stay whole.
    assert render_diff(word_diff("a b c d e f", "A b c d e F")) == "~a~ *A* b c d e ~f~ *F*"


def test_outside_words_can_neither_format_nor_ping() -> None:
    line = render_diff(word_diff("plain", "*bold* _it_ ~s~ `c` <!here> &"))
    assert line == "~plain~ *∗bold∗ ˍitˍ ∼s∼ ˋcˋ &lt;!here&gt; &amp;*"
    assert inert("a*b") == "a∗b"


def test_a_secret_inside_a_word_is_redacted_before_it_is_made_inert() -> None:
    register_secrets(["sk_live_abcdef0123456789"])
    assert "sk_live" not in render_diff(word_diff("key", "key=sk_live_abcdef0123456789"))
    assert "REDACTED" in render_diff(word_diff("key", "key=sk_live_abcdef0123456789"))


def test_field_diffs_name_each_changed_text_field() -> None:
    old = PostContent(caption="Same caption", title="Old")
    assert field_diffs(old, PostContent(caption="Same caption", title="New")) == ["> *Title:* ~Old~ *New*"]
    assert field_diffs(old, old) == []
    assert field_diffs(old, PostContent(caption="Same\ncaption", title="Old")) == [
        "> *Caption:* _only spacing or line breaks changed_"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.text(max_size=400), st.integers(min_value=40, max_value=1500))
def test_any_diff_fits_its_budget_and_keeps_its_markers_balanced(old: str, new: str, budget: int) -> None:
    line = render_diff(word_diff(old, new), budget=budget)
    body = line.removesuffix(" _(diff shortened; the card shows the whole text)_")
    assert len(body) <= budget
    # Our own markers come in pairs, and nothing from outside is a marker or a tag.
    assert body.count("~") % 2 == 0 and body.count("*") % 2 == 0
    assert "`" not in body and "_" not in body and not re.search(r"<(?!$)", body)
