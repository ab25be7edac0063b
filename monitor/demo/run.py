"""``vlm-monitor demo``: the reference VLM under monitoring, end to end, loop closed.

1. make sure a Kafka broker answers (start the embedded Tansu broker if not);
2. load the configured model (the bundled hallucinating reference VLM) from its
   local directory;
3. fit the first probe on labelled reference traffic, as the retrain job fits
   challengers, and show the premise: on held-out requests its AUROC lies above
   the output confidence's, bootstrap intervals apart;
4. publish it as champion of a fresh registry that the serving collector follows;
5. serve the windows of :data:`monitor.demo.loop.PHASES` (reference, live, a
   shift the probe can be refit on, the same shift after the retrain, the shift
   where nothing helps), each ingested, scored by the daemon's detectors, and on
   a calibration or KL alert retrained automatically: the promotion, the
   collector's switch and the recovered ECE, then the refusal and what to do;
6. print the summary table and write the HTML report of the last window.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass

from rich.console import Console

from collectors.generate.collector import ReliabilityCollector
from collectors.probe.reload import ProbeWatcher
from collectors.routing.gate import RoutingGate
from collectors.transport.emitter import KafkaEmitter
from monitor.config.settings import Config
from monitor.demo.loop import LoopResult, serve_phases
from monitor.demo.premise import compare_signals, output_confidence, print_premise
from monitor.demo.retrain_step import demo_config
from monitor.demo.traffic import capture_states
from monitor.ingest.admin import ensure_topics, is_reachable
from monitor.ingest.clock import EventClock
from monitor.ingest.consumer import Ingester
from monitor.reference_vlm.model import load_reference_model
from monitor.reference_vlm.shapes import make_samples
from monitor.reports.drift_report import write_html_report
from monitor.reports.summary import render_summary
from monitor.service.broker import EmbeddedBroker
from monitor.store import queries
from monitor.store.database import Store
from retrain.challenger import fit_challenger, split_indices
from retrain.evaluate import evaluate
from retrain.registry import ProbeRegistry

log = logging.getLogger(__name__)


def _ensure_broker(cfg: Config, stack: ExitStack, console: Console) -> tuple[Config, bool]:
    """Return a config whose bootstrap servers answer, and whether Tansu was started for it."""
    kafka = cfg.reliability_monitor.kafka
    kafka_log = logging.getLogger("kafka")
    level, kafka_log.level = kafka_log.level, logging.CRITICAL  # refusals are expected here
    try:
        answered = is_reachable(kafka.bootstrap_servers, timeout_s=2.0, **_security(kafka))
    finally:
        kafka_log.setLevel(level)
    if answered:
        console.print(f"Kafka broker answering at {', '.join(kafka.bootstrap_servers)}")
        return cfg, False
    host, _, port = kafka.bootstrap_servers[0].rpartition(":")
    broker = EmbeddedBroker(port=int(port) if host in ("127.0.0.1", "localhost") else 0)
    try:
        broker.start()
    except Exception:  # port taken by something that is not Kafka: use a free one
        broker = EmbeddedBroker(port=0).start()
    stack.callback(broker.stop)
    console.print(
        f"[yellow]No Kafka broker answered at {', '.join(kafka.bootstrap_servers)}; "
        f"started the embedded Tansu broker at {broker.bootstrap_servers[0]} (in memory).[/]"
    )
    new_kafka = kafka.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
    rm = cfg.reliability_monitor.model_copy(update={"kafka": new_kafka})
    return cfg.model_copy(update={"reliability_monitor": rm}), True


def _security(kafka) -> dict:
    kwargs = kafka.client_kwargs()
    kwargs.pop("bootstrap_servers")
    return kwargs


@dataclass(frozen=True)
class DemoResult:
    """What the demo showed.

    Attributes
    ----------
    premise_holds : bool
        The probe's AUROC interval lies above the output confidence's.
    loop : LoopResult
        Every window's score, retrain and probe switch.
    report : Path
        The HTML report of the last window.
    """

    premise_holds: bool
    loop: LoopResult
    report: object


def _first_probe(cfg: Config, model, processor, n_fit: int, seed: int, console) -> tuple:
    """Fit v1 on labelled reference traffic; print the premise. Returns (probe, premise)."""
    rm, rt = cfg.reliability_monitor, cfg.reliability_monitor.retrain
    console.print(
        f"Fitting the probe on decoder layer {rm.target_layer} ({rm.probe.pooling}) from "
        f"{n_fit} labelled reference requests"
    )
    samples = make_samples(n_fit, seed=seed + 100)
    states, correct = capture_states(
        model, processor, samples, layer=rm.target_layer, pooling=rm.probe.pooling
    )
    train, cal, test = split_indices(correct, rt.train_fraction, rt.calibration_fraction, seed)
    probe, choice, _ = fit_challenger(
        states[train], correct[train], states[cal], correct[cal],
        kind=rt.probe, layer=rm.target_layer, layers=None, pooling=rm.probe.pooling,
        version="v1", calibration=rt.calibration, seed=seed, dropout=rm.probe.dropout,
    )  # fmt: skip
    probe.metadata["evaluation"] = {
        "challenger": evaluate(probe.predict_proba(states[test]), correct[test]).as_dict()
    }
    out_conf = output_confidence(model, processor, [samples[i] for i in test])
    ev_probe, ev_output = compare_signals(
        probe.predict_proba(states[test]), out_conf, correct[test], seed=seed
    )
    console.print(f"  probe v1: {rt.probe}, {choice.method} calibration")
    premise = print_premise(console, ev_probe, ev_output, rm.target_layer, correct.mean())
    return probe, premise


def run_demo(
    cfg: Config, events_per_window: int = 500, seed: int = 0, console: Console | None = None
) -> DemoResult:
    """Run the demo (module docstring); return what it showed.

    Raises
    ------
    FileNotFoundError
        The configured model directory holds no checkpoint.
    """
    console = console or Console()
    t0 = time.time()
    with ExitStack() as stack:
        cfg, fresh_broker = _ensure_broker(cfg, stack, console)
        rm = cfg.reliability_monitor
        topics = rm.kafka.topics
        ensure_topics(
            rm.kafka.client_kwargs(), [topics.events, topics.labels, topics.alerts, topics.control]
        )
        console.print(f"Loading {rm.model.id} from {rm.model.path}")
        model, processor = load_reference_model(rm.model.path, device=rm.model.device)
        n_fit = max(2 * events_per_window, 400)
        probe, premise = _first_probe(cfg, model, processor, n_fit, seed, console)

        run_dir = rm.store.path.parent / "demo-registry" / time.strftime("run-%Y%m%d-%H%M%S")
        registry = ProbeRegistry(run_dir)
        registry.publish(probe)
        registry.promote(probe.version, reason="demo probe, fitted on reference traffic")
        console.print(f"  v1 is the champion of {run_dir}; the serving collector follows it")
        demo_cfg = demo_config(cfg, run_dir)

        store = stack.enter_context(Store.from_config(rm.store))
        if fresh_broker:  # a new in-memory broker starts its offsets at 0 again
            for topic in (topics.events, topics.labels):
                store.clear_offsets(topic)
        ingester = Ingester(rm.kafka, store, clock=EventClock.from_config(rm.store))
        stack.callback(ingester.close)
        emitter = KafkaEmitter(
            topics.events, queue_size=rm.kafka.producer_queue_size, **rm.kafka.client_kwargs()
        )
        stack.callback(emitter.close)
        gate = RoutingGate(rm.routing.confidence_threshold, tuple(rm.routing.gray_zone_bounds))
        collector = stack.enter_context(
            ReliabilityCollector(
                model, probe, gate=gate, emitter=emitter, model_id=rm.model.id,
                capture_states=True,  # retraining fits on the captured states
            )
        )  # fmt: skip
        watcher = ProbeWatcher(
            run_dir, collector.swap_probe, current_version=probe.version, poll_s=1.0,
            control_topic=topics.control, client_kwargs=rm.kafka.client_kwargs(),
        )  # fmt: skip
        stack.enter_context(watcher)
        loop = serve_phases(
            cfg, demo_cfg, model=model, processor=processor, collector=collector,
            watcher=watcher, emitter=emitter, ingester=ingester, store=store,
            events_per_window=events_per_window, seed=seed, console=console,
        )  # fmt: skip
        console.rule("Summary")
        render_summary(
            [s.row for s in loop.scores],
            [a for s in loop.scores for a in s.alerts],
            console,
            grouped=True,
        )
        report = _report(cfg, store, loop)
        console.print(f"HTML report: {report}")
        console.print(
            f"Sent {emitter.sent} events and labels ({emitter.dropped} dropped). "
            f"Done in {time.time() - t0:.0f} s."
        )
        return DemoResult(premise_holds=premise, loop=loop, report=report)


def _report(cfg: Config, store: Store, loop: LoopResult):
    """The HTML report of the last window against its probe version's reference window."""
    rm = cfg.reliability_monitor
    last = loop.scores[-1].window
    ref = next(s.window for s in loop.scores if s.window.probe_version == last.probe_version)
    subject = queries.Subject(rm.model.id, last.probe_version, None)
    name = last.name.replace(",", "").replace(" ", "-")
    return write_html_report(
        queries.scores(store, subject, ref.start, ref.end, "confidence"),
        queries.scores(store, subject, last.start, last.end, "confidence"),
        [s.result for s in loop.scores[-1].results if s.signal == "confidence"],
        rm.store.reports_dir / f"report-{name}.html",
        title=f"vlm-monitor: {rm.model.id}, window '{last.name}' vs '{ref.name}' "
        f"(probe {last.probe_version})",
    )
