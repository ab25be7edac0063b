"""Scores to events: aligned with the requests, unscored rows left out, lengths checked."""

import math

import numpy as np
import pytest

from collectors.routing.score import Score, to_events

SCORES = [
    Score(raw_logit=1.0, confidence=0.73, decision="serve", state=np.array([0.5, -1.0])),
    Score(raw_logit=math.nan, confidence=math.nan, decision="fallback", scored=False),
    Score(0.0, 0.5, "self_consistency", route="fallback", consistency=0.4, consistency_k=5),
]


def test_events_are_aligned_and_carry_the_final_route():
    events = to_events(SCORES, ["yes", "", "no"], "t", "m", "v1", 3, "mean", ["r-1", None, "r-3"])
    first, missing, gray = events
    assert missing is None  # the unscored row: no event, its place kept
    assert (first.event_id, first.tag, first.answer, first.route) == ("r-1", "t", "yes", "")
    assert first.state == [0.5, -1.0] and first.ts == gray.ts
    assert (gray.event_id, gray.decision, gray.route) == ("r-3", "self_consistency", "fallback")
    assert (gray.consistency, gray.consistency_k) == (0.4, 5)
    fresh = to_events(SCORES[:1], ["a"], ["x"], "m", "v1", 3, "mean")[0]
    assert len(fresh.event_id) == 32  # a new random id


@pytest.mark.parametrize(
    ("answers", "tags", "ids", "named"),
    [
        (["a"], "t", None, "3 scores but 1 answers"),
        (["a", "b", "c"], ["t"], None, "3 scores but 1 tags"),
        (["a", "b", "c"], "t", ["r"], "3 scores but 1 event ids"),
    ],
)
def test_lengths_that_differ_are_named(answers, tags, ids, named):
    with pytest.raises(ValueError, match=named):
        to_events(SCORES, answers, tags, "m", "v1", 3, "mean", ids)
