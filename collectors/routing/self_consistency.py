"""Self-consistency for the gate's gray zone: K sampled answers, majority share as the score.

Self-consistency (Wang et al. 2023, "Self-Consistency Improves Chain of Thought
Reasoning in Language Models") draws ``K`` answers by nucleus sampling (Holtzman
et al. 2020, top-p) and scores the share of the most common canonical answer.
*Where Reliability Lives* (Table 6) measures it at AUROC 0.78-0.81 on POPE for
10x the cost of one answer, so the gate spends it only inside the gray zone.

Canonicalisation (:func:`canonicalise_answer`): lower-case; a leading yes/no
word (or synonym) collapses to ``"yes"`` / ``"no"``; otherwise the first integer
(digits or an English number word up to twenty) is extracted; otherwise the
text with punctuation stripped and whitespace collapsed.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from collectors.routing.gate import SELF_CONSISTENCY, gray_zone_samples

_YES = {"yes", "yeah", "yep", "yup", "true", "correct"}
_NO = {"no", "nope", "false", "incorrect"}
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def canonicalise_answer(text: str) -> str:
    """Canonical form of a generated answer, for counting agreement.

    Examples
    --------
    >>> [canonicalise_answer(t) for t in ["Yes.", "yeah, it is", "NO!", "There are 3 dogs."]]
    ['yes', 'yes', 'no', '3']
    >>> canonicalise_answer("Two."), canonicalise_answer("  A red   Circle! ")
    ('2', 'a red circle')
    """
    words = str(text).lower().translate(_PUNCT).split()
    if not words:
        return ""
    if words[0] in _YES:
        return "yes"
    if words[0] in _NO:
        return "no"
    for word in words:
        if word.lstrip("-").isdigit():
            return str(int(word))
        if word in _NUMBER_WORDS:
            return str(_NUMBER_WORDS[word])
    return " ".join(words)


@dataclass(frozen=True)
class Consistency:
    """Agreement among the K samples of one request.

    Attributes
    ----------
    answer : str
        The majority canonical answer (ties: the one sampled first).
    share : float
        Fraction of samples equal to ``answer``, in [1/K, 1].
    samples : tuple of str
        The canonical samples, in order.
    """

    answer: str
    share: float
    samples: tuple[str, ...]


def majority_share(answers: Sequence[str]) -> Consistency:
    """Majority canonical answer and its share.

    Raises
    ------
    ValueError
        ``answers`` is empty.

    Examples
    --------
    >>> majority_share(["Yes", "no", "yes."]).share
    0.6666666666666666
    """
    if len(answers) == 0:
        raise ValueError("need at least one sampled answer")
    canonical = tuple(canonicalise_answer(a) for a in answers)
    counts = Counter(canonical)
    best = max(counts.values())
    answer = next(a for a in canonical if counts[a] == best)  # first sampled among the tied
    return Consistency(answer=answer, share=best / len(canonical), samples=canonical)


@dataclass(frozen=True)
class SelfConsistency:
    """K-sample nucleus-sampling self-consistency.

    Parameters
    ----------
    k : int
        Samples per request, >= 2.
    top_p : float
        Nucleus mass in (0, 1].
    temperature : float
        Sampling temperature > 0.
    seed : int
        Seeds torch's generators for each call (inside ``fork_rng``, so the
        caller's random state is untouched); the same inputs give the same samples.
    max_new_tokens : int
    agreement_threshold : float
        Majority share at or above which the majority answer is served; below
        it the request falls back.

    Raises
    ------
    ValueError
        A parameter is out of range.
    """

    k: int = 5
    top_p: float = 0.9
    temperature: float = 1.0
    seed: int = 0
    max_new_tokens: int = 8
    agreement_threshold: float = 0.6

    def __post_init__(self) -> None:
        if self.k < 2 or not 0 < self.top_p <= 1 or self.temperature <= 0:
            raise ValueError(f"need k >= 2, 0 < top_p <= 1, temperature > 0; got {self}")
        if not 0 <= self.agreement_threshold <= 1 or self.max_new_tokens < 1:
            raise ValueError(f"need agreement_threshold in [0, 1], max_new_tokens >= 1; got {self}")

    @classmethod
    def from_action(cls, action: str, **kwargs: Any) -> SelfConsistency:
        """Parse a config ``gray_zone_action`` such as ``"self_consistency_k5"``.

        Raises
        ------
        ValueError
            The action is not ``self_consistency`` or ``self_consistency_k<K>``.
        """
        k = gray_zone_samples(action)
        if k is not None:
            kwargs["k"] = k
        return cls(**kwargs)

    def sample(
        self,
        model: torch.nn.Module,
        inputs: Mapping[str, Any],
        decode: Callable[[torch.Tensor], list[str]],
    ) -> list[list[str]]:
        """Draw K answers for every row of ``inputs``.

        Parameters
        ----------
        model : transformers model with ``generate``
        inputs : mapping
            Processor outputs for the requests (``input_ids`` of shape (batch, seq), ...).
        decode : callable
            Generated token ids of shape (n, new_tokens) -> list of n strings,
            e.g. ``lambda ids: tokenizer.batch_decode(ids, skip_special_tokens=True)``.

        Returns
        -------
        list of list of str, shape (batch, k)
        """
        cuda = {p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"}
        devices = sorted(cuda)
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(self.seed)
            out = model.generate(
                **inputs,
                do_sample=True,
                top_p=self.top_p,
                top_k=0,
                temperature=self.temperature,
                num_return_sequences=self.k,
                max_new_tokens=self.max_new_tokens,
            )  # [batch * k, prompt_len + new], rows of one request adjacent
        texts = decode(out[:, inputs["input_ids"].shape[1] :])
        return [list(texts[i : i + self.k]) for i in range(0, len(texts), self.k)]

    def score(
        self,
        model: torch.nn.Module,
        inputs: Mapping[str, Any],
        decode: Callable[[torch.Tensor], list[str]],
    ) -> list[Consistency]:
        """:meth:`sample`, then :func:`majority_share` per request."""
        return [majority_share(row) for row in self.sample(model, inputs, decode)]


def resolve_gray_zone(
    model: torch.nn.Module,
    gate: Any,
    self_consistency: SelfConsistency | None,
    scores: Sequence[Any],
    make_inputs: Callable[[list[int]], Mapping[str, Any]],
    decode: Callable[[torch.Tensor], list[str]],
) -> list[Any]:
    """Run self-consistency on the gray-zone rows of ``scores`` and set their final route.

    See :meth:`collectors.generate.collector.ReliabilityCollector.resolve` (which pauses
    scoring around this call).

    Raises
    ------
    ValueError
        Gray-zone rows exist and ``self_consistency`` is None.
    """
    rows = [i for i, s in enumerate(scores) if s.decision == SELF_CONSISTENCY]
    if not rows:
        return list(scores)
    if self_consistency is None:
        raise ValueError("gray-zone requests need a SelfConsistency (self_consistency=...)")
    results = self_consistency.score(model, make_inputs(rows), decode)
    out = list(scores)
    threshold = self_consistency.agreement_threshold
    for i, res in zip(rows, results):
        route = gate.resolve(SELF_CONSISTENCY, res.share, threshold)
        out[i] = replace(
            out[i], consistency=res.share, consensus=res.answer, route=route,
            consistency_k=len(res.samples),
        )  # fmt: skip
    return out
