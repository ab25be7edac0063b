import json

import numpy as np
import pytest
import torch

from collectors.generate.collector import ReliabilityCollector
from collectors.probe.linear import LinearProbe
from collectors.routing.gate import FALLBACK, SELF_CONSISTENCY, SERVE, RoutingGate
from collectors.routing.self_consistency import SelfConsistency, canonicalise_answer, majority_share
from collectors.wire.codec import decode, encode


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Yes.", "yes"),
        ("YEAH, there is one", "yes"),
        ("No!", "no"),
        ("nope", "no"),
        ("There are 12 apples.", "12"),
        ("three", "3"),
        ("  A red,   circle! ", "a red circle"),
        ("", ""),
    ],
)
def test_canonicalise(text, canonical):
    assert canonicalise_answer(text) == canonical


def test_majority_share_counts_canonical_answers():
    res = majority_share(["Yes.", "no", "yes", "Yeah!", "2"])
    assert (res.answer, res.share) == ("yes", 0.6)
    assert majority_share(["two", "2", "3"]).share == pytest.approx(2 / 3)
    assert majority_share(["b", "a"]).answer == "b"  # a tie goes to the first sampled
    with pytest.raises(ValueError, match="at least one"):
        majority_share([])


def test_from_action_parses_config():
    assert SelfConsistency.from_action("self_consistency_k5").k == 5
    assert SelfConsistency.from_action("self_consistency_k10", top_p=0.8).top_p == 0.8
    with pytest.raises(ValueError, match="gray_zone_action"):
        SelfConsistency.from_action("majority_vote")
    with pytest.raises(ValueError, match="k >= 2"):
        SelfConsistency(k=1)


WORDS = {3: "yes", 4: "no", 5: "two", 6: "2"}


def _decode(ids: torch.Tensor) -> list[str]:
    return [" ".join(WORDS.get(int(t), f"w{int(t)}") for t in row) for row in ids]


def _inputs(rows: list[int]) -> dict:
    ids = torch.tensor([[49] * 16 + [3 + (i % 4), 7] for i in rows])
    g = torch.Generator().manual_seed(5)
    pixels = torch.randn(4, 3, 32, 32, generator=g)[rows]
    return dict(input_ids=ids, pixel_values=pixels)


def test_sampling_is_seeded_and_nucleus(tiny_llava):
    sc = SelfConsistency(k=6, top_p=0.9, seed=7, max_new_tokens=2)
    a = sc.sample(tiny_llava, _inputs([0, 1]), _decode)
    torch.manual_seed(123)  # the caller's RNG state does not matter, and is restored
    state = torch.get_rng_state()
    b = sc.sample(tiny_llava, _inputs([0, 1]), _decode)
    assert torch.equal(torch.get_rng_state(), state)
    assert a == b and len(a) == 2 and all(len(row) == 6 for row in a)
    assert len({t for row in a for t in row}) > 2  # random weights: sampling varies
    assert (
        SelfConsistency(k=6, top_p=0.9, seed=8, max_new_tokens=2).sample(
            tiny_llava, _inputs([0, 1]), _decode
        )
        != a
    )
    greedy = SelfConsistency(k=4, top_p=1e-6, seed=1, max_new_tokens=2).score(
        tiny_llava, _inputs([0]), _decode
    )
    assert greedy[0].share == 1.0  # a tiny nucleus keeps only the top token: all samples agree


def test_collector_resolves_only_the_gray_zone(tiny_llava):
    rng = np.random.default_rng(0)
    probe = LinearProbe(weight=rng.normal(size=64), bias=0.0, layer=2)
    with ReliabilityCollector(tiny_llava, probe) as col, torch.no_grad():
        tiny_llava(**_inputs([0, 1, 2, 3]))
        scores = col.collect()
    conf = sorted(s.confidence for s in scores)
    # bounds around the middle two confidences: two rows in the gray zone, one each side
    gate = RoutingGate(confidence_threshold=0.5, gray_zone_bounds=(conf[1] - 1e-6, conf[2] + 1e-6))
    sc = SelfConsistency(k=5, top_p=0.95, seed=3, max_new_tokens=2, agreement_threshold=0.6)
    asked: list[list[int]] = []

    def make_inputs(rows: list[int]) -> dict:
        asked.append(rows)
        return _inputs(rows)

    with ReliabilityCollector(tiny_llava, probe, gate=gate, self_consistency=sc) as col:
        with torch.no_grad():
            tiny_llava(**_inputs([0, 1, 2, 3]))
        scores = col.collect()
        resolved = col.resolve(scores, make_inputs, _decode)
        assert col.collect() == []  # the K samples were not scored as requests
    gray = [i for i, s in enumerate(scores) if s.decision == SELF_CONSISTENCY]
    assert asked == [gray] and len(gray) == 2
    expected = sc.score(tiny_llava, _inputs(gray), _decode)
    for i, s in enumerate(resolved):
        if i in gray:
            res = expected[gray.index(i)]
            assert (s.consistency, s.consensus) == (res.share, res.answer)
            assert s.route == (SERVE if res.share >= 0.6 else FALLBACK)
        else:
            assert s == scores[i] and s.route == s.decision != SELF_CONSISTENCY
    # the events carry how the gray zone resolved; in JSON (for older monitors) that takes
    # wire version 3, the others stay version 2
    for i, event in enumerate(col.emit(resolved, ["yes"] * 4)):
        assert decode(encode(event)) == event and event.final_route == resolved[i].route
        body = json.loads(encode(event, 3))
        if i in gray:
            assert (event.consistency, event.consistency_k) == (resolved[i].consistency, 5)
            assert body["schema_version"] == 3 and body["route"] == event.route
        else:
            assert body["schema_version"] == 2 and "route" not in body
    with pytest.raises(ValueError, match="need a SelfConsistency"):
        ReliabilityCollector(tiny_llava, probe, gate=gate).resolve(scores, make_inputs, _decode)
