"""Shared fixtures: a real embedded Kafka broker (Tansu) and a throw-away DuckDB store; no
emitter thread outlives its test."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.wire.events import LabelEvent, ScoredEvent
from monitor.service.broker import EmbeddedBroker
from monitor.store.database import Store

_counter = itertools.count()


def _emitter_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("vlm-monitor-emitter")}


@pytest.fixture(autouse=True)
def no_emitter_thread_left() -> Iterator[None]:
    """Every emitter thread a test starts has ended when it ends, so none (kafka-python draws
    reconnect jitter from ``random``) runs into a later test's hypothesis strategies."""
    before = _emitter_threads()
    yield
    for thread in _emitter_threads() - before:  # a connection attempt may end its timeout first
        thread.join(timeout=10)
        assert not thread.is_alive(), f"{thread.name} still running after the test"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A real Tansu broker on a free port, shared by the session, stopped at the end."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    embedded = EmbeddedBroker(port=0, log_path=log_path)
    embedded.start(timeout_s=20.0)
    yield embedded
    embedded.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix unique to each test, so tests sharing the broker never see each other's topics."""
    return f"t{next(_counter)}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tmp_store(tmp_path: Path) -> Iterator[Store]:
    """An empty :class:`Store` in a fresh file, closed after the test."""
    store = Store(tmp_path / "data" / "monitor.duckdb")
    yield store
    store.close()


def _make_event(
    i: int,
    *,
    ts: float | None = None,
    confidence: float | None = None,
    model_id: str = "m",
    state: list[float] | None = None,
) -> ScoredEvent:
    return ScoredEvent(
        event_id=f"ev-{i:06d}",
        ts=1_700_000_000.0 + i if ts is None else ts,
        model_id=model_id,
        probe_version="p1",
        layer=3,
        pooling="last_prompt_token",
        raw_logit=0.1 * (i % 7),
        confidence=((i * 37) % 100) / 100 if confidence is None else confidence,
        decision="serve",
        answer="yes",
        tag="t",
        state=state,
    )


def _make_label(i: int, *, correct: bool | None = None) -> LabelEvent:
    return LabelEvent(
        event_id=f"ev-{i:06d}",
        correct=(i % 3 != 0) if correct is None else correct,
        ts=1_700_000_500.0 + i,
        source="benchmark",
    )


@pytest.fixture
def make_event():
    """Factory ``make_event(i, ts=None, confidence=None, model_id="m", state=None)`` -> ScoredEvent
    with id ``ev-{i:06d}``, deterministic in ``i``."""
    return _make_event


@pytest.fixture
def make_label():
    """Factory ``make_label(i, correct=None)`` -> LabelEvent for event ``ev-{i:06d}``."""
    return _make_label
