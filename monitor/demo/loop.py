"""The demo's serving loop: windows of traffic, each ingested, scored, and acted on.

For every :class:`Phase`: serve its requests through the collector (events and
delayed labels to Kafka), ingest Kafka into DuckDB, score the window with the
daemon's detectors (:mod:`monitor.demo.windows`), and when a calibration-drift
or KL alert fires, retrain automatically (:mod:`monitor.demo.retrain_step`) on
the labelled traffic since the serving probe took over (the demo's stand-in for
``retrain.window``: what an earlier retrain saw is not fitted again). A
promoted challenger reaches the serving collector the way it reaches a
production one: announced on the control topic, loaded by the collector's
:class:`~collectors.probe.reload.ProbeWatcher`, swapped in at the next request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import Progress

from collectors.generate.collector import ReliabilityCollector
from collectors.probe.reload import ProbeWatcher
from monitor.config.settings import Config
from monitor.demo.retrain_step import demo_auto_retrain
from monitor.demo.traffic import Window, run_window
from monitor.demo.windows import WindowScore, score_demo_window
from monitor.ingest.consumer import Ingester
from monitor.reference_vlm.shapes import make_samples
from retrain.job import RetrainOutcome

SWITCH_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Phase:
    """One window of demo traffic: its name, the shift its images are drawn under, why, and
    its size in units of ``events_per_window`` (a shift brings more traffic to refit on)."""

    name: str
    shift: str | None
    about: str
    scale: int = 1


PHASES: tuple[Phase, ...] = (
    Phase("reference", None, "in-distribution traffic, the reference window"),
    Phase("live", None, "more in-distribution traffic: nothing should fire"),
    Phase("small", "small", "objects shrink to 1 px: a shift the probe can be refit on", 2),
    Phase("small, later", "small", "the same shift, after the automatic retrain"),
    Phase("all shifts", "all", "noise, small objects, backgrounds: model at chance", 2),
)


@dataclass
class LoopResult:
    """What the loop did: every scored window, retrain outcome and probe switch."""

    scores: list[WindowScore] = field(default_factory=list)
    retrains: list[tuple[str, RetrainOutcome]] = field(default_factory=list)  # (window, outcome)
    switches: list[tuple[str, str, float]] = field(default_factory=list)  # (from, to, seconds)


def wait_for_switch(watcher: ProbeWatcher, version: str, timeout_s: float) -> float | None:
    """Seconds until ``watcher`` serves ``version``, or None after ``timeout_s``."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        if watcher.current_version == version:
            return time.perf_counter() - t0
        time.sleep(0.05)
    return None


def serve_phases(
    cfg: Config,
    demo_cfg: Config,
    *,
    model: Any,
    processor: Any,
    collector: ReliabilityCollector,
    watcher: ProbeWatcher,
    emitter: Any,
    ingester: Ingester,
    store: Any,
    events_per_window: int,
    seed: int,
    console: Console,
    phases: Sequence[Phase] = PHASES,
) -> LoopResult:
    """Run every phase in order; see the module docstring.

    Parameters
    ----------
    cfg : Config
        As given to the demo (topics).
    demo_cfg : Config
        With the demo's registry (:func:`monitor.demo.retrain_step.demo_config`).
    events_per_window : int
        Requests per window.
    seed : int
        Window ``i`` draws its samples with seed ``seed + 1 + i``.

    Returns
    -------
    LoopResult
    """
    topics = cfg.reliability_monitor.kafka.topics
    out = LoopResult()
    first_window: dict[str | None, Window] = {}  # each probe version's reference window
    for i, phase in enumerate(phases):
        console.rule(f"Window {i + 1}: {phase.name} ({phase.about})")
        n = events_per_window * phase.scale
        samples = make_samples(n, seed=seed + 1 + i, shift=phase.shift)
        window = _serve(phase.name, model, processor, collector, samples, emitter, topics, console)
        emitter.flush(timeout_s=30)
        stats = ingester.run_until_idle(idle_s=1.0, max_s=120.0)
        reference = first_window.setdefault(window.probe_version, window)
        model_reference = out.scores[0].window if out.scores else window
        score = score_demo_window(demo_cfg, store, window, reference, model_reference)
        out.scores.append(score)
        console.print(_line(score, stats))
        since = reference.start  # labelled traffic since the serving probe took over
        outcome = demo_auto_retrain(demo_cfg, store, score, since, console)
        if outcome is None:
            continue
        out.retrains.append((window.name, outcome))
        if outcome.promoted and outcome.version is not None:
            waited = wait_for_switch(watcher, outcome.version, SWITCH_TIMEOUT_S)
            if waited is None:
                console.print(f"  [red]The collector did not switch to {outcome.version}.[/]")
            else:
                out.switches.append((str(outcome.champion_version), outcome.version, waited))
                console.print(
                    f"  The serving collector switched {outcome.champion_version} -> "
                    f"{outcome.version} {waited:.2f} s after the promotion (control topic "
                    f"{topics.control}); the next request is scored by {outcome.version}."
                )
    return out


def _serve(
    name: str,
    model: Any,
    processor: Any,
    collector: ReliabilityCollector,
    samples: Sequence[Any],
    emitter: Any,
    topics: Any,
    console: Console,
) -> Window:
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"serving {name}", total=len(samples))
        advance: Callable[[int], None] = lambda n: progress.advance(task, n)  # noqa: E731
        return run_window(
            name,
            model,
            processor,
            collector,
            samples,
            lambda label: emitter.emit(label, topic=topics.labels),
            progress=advance,
        )


def _line(score: WindowScore, stats: Any) -> str:
    r, w = score.row, score.window
    ece = "–" if r.ece is None else f"{r.ece:.3f}"
    est = "–" if r.mean_confidence is None else f"{r.mean_confidence:.3f}"
    if r.estimate_reliable is False:
        est += " [yellow](unreliable: the pooled states moved)[/]"
    fired = ", ".join(sorted({a.detector or a.kind for a in score.alerts})) or "none"
    return (
        f"  {len(w.events)} requests served by probe {w.probe_version}, ingested "
        f"({stats.n_events} events, {stats.n_labels} labels); accuracy {w.accuracy:.3f}, "
        f"label-free estimate {est}, ECE {ece}; alerts: {fired}"
    )
