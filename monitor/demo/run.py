"""``vlm-monitor demo``: the reference VLM under monitoring, end to end.

1. make sure a Kafka broker answers (start the embedded Tansu broker if not);
2. load the bundled reference model from its local directory;
3. fit a linear probe + temperature on labelled reference traffic;
4. serve three windows through the collector: reference, live in-distribution,
   shifted (noise, smaller objects, other backgrounds); events and labels go to Kafka;
5. ingest Kafka into DuckDB; run KL (score drift) and ECE (calibration) per window
   against the reference window; alert; write the HTML report and a summary.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from collectors.generate.collector import ReliabilityCollector
from collectors.routing.gate import RoutingGate
from collectors.transport.emitter import KafkaEmitter
from monitor.config.settings import Config
from monitor.demo.retrain_step import demo_auto_retrain
from monitor.demo.traffic import Window, capture_states, run_window
from monitor.demo.windows import evaluate_windows
from monitor.ingest.admin import ensure_topics, is_reachable
from monitor.ingest.clock import EventClock
from monitor.ingest.consumer import Ingester
from monitor.reference_vlm.model import load_reference_model
from monitor.reference_vlm.shapes import make_samples
from monitor.service.broker import EmbeddedBroker
from monitor.store.database import Store
from retrain.challenger import fit_challenger, split_indices
from retrain.evaluate import evaluate

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


def run_demo(
    cfg: Config, events_per_window: int = 600, seed: int = 0, console: Console | None = None
) -> int:
    """Run the demo; return the number of alerts raised on the shifted window.

    Raises
    ------
    FileNotFoundError
        The configured model directory holds no checkpoint.
    """
    console = console or Console()
    t0 = time.time()
    rm = cfg.reliability_monitor
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
        console.print(
            f"Fitting the probe on layer {rm.target_layer} ({rm.probe.pooling}) "
            f"from {n_fit} labelled reference requests"
        )
        states, correct = capture_states(
            model,
            processor,
            make_samples(n_fit, seed=seed + 100),
            layer=rm.target_layer,
            pooling=rm.probe.pooling,
        )
        rt = rm.retrain  # the first probe is fitted exactly as the retrain job fits challengers
        train, cal, test = split_indices(correct, rt.train_fraction, rt.calibration_fraction, seed)
        probe, choice, _ = fit_challenger(
            states[train], correct[train], states[cal], correct[cal],
            kind=rt.probe, layer=rm.target_layer, layers=None, pooling=rm.probe.pooling,
            version="v1", calibration=rt.calibration, seed=seed, dropout=rm.probe.dropout,
        )  # fmt: skip
        held_out = evaluate(probe.predict_proba(states[test]), correct[test])
        probe.metadata["evaluation"] = {"challenger": held_out.as_dict()}
        probe_dir = Path(rm.store.path).parent / "probes"
        probe.save(probe_dir)
        console.print(
            f"  probe v1 ({rt.probe}, {choice.method} calibration): accuracy of the model on "
            f"these requests {correct.mean():.1%}, held-out AUROC {held_out.auroc:.3f}, "
            f"ECE {held_out.ece:.3f} -> {probe_dir}"
        )

        emitter = KafkaEmitter(
            topics.events, queue_size=rm.kafka.producer_queue_size, **rm.kafka.client_kwargs()
        )
        stack.callback(emitter.close)
        gate = RoutingGate(rm.routing.confidence_threshold, tuple(rm.routing.gray_zone_bounds))
        plan = [
            ("reference", make_samples(events_per_window, seed=seed + 1)),
            ("live", make_samples(events_per_window, seed=seed + 2)),
            ("shifted", make_samples(events_per_window, seed=seed + 3, shift="all")),
        ]
        windows: list[Window] = []
        with (
            ReliabilityCollector(
                model,
                probe,
                gate=gate,
                emitter=emitter,
                model_id=rm.model.id,
                capture_states=True,  # part 6 (auto-retrain) fits on captured states
            ) as collector,
            Progress(console=console, transient=True) as progress,
        ):
            task = progress.add_task("serving requests", total=sum(len(s) for _, s in plan))
            for name, samples in plan:
                progress.update(task, description=f"serving {name} traffic")
                windows.append(
                    run_window(
                        name,
                        model,
                        processor,
                        collector,
                        samples,
                        lambda label: emitter.emit(label, topic=topics.labels),
                        progress=lambda n: progress.advance(task, n),
                    )
                )
        emitter.flush(timeout_s=30)
        console.print(
            f"Served {sum(len(w.events) for w in windows)} requests; events and labels "
            f"sent to Kafka ({emitter.sent} acked, {emitter.dropped} dropped)"
        )

        store = stack.enter_context(Store.from_config(rm.store))
        if fresh_broker:  # a new in-memory broker starts its offsets at 0 again
            for topic in (topics.events, topics.labels):
                store.clear_offsets(topic)
        ingester = Ingester(rm.kafka, store, clock=EventClock.from_config(rm.store))
        stack.callback(ingester.close)
        expected = sum(len(w.events) for w in windows)
        stats = ingester.run_until_idle(idle_s=2.0, max_s=120.0)
        console.print(
            f"Ingested into {rm.store.path}: {stats.n_events} events, {stats.n_labels} labels, "
            f"{stats.n_dead} dead letters (expected {expected} of each)"
        )

        alerts = evaluate_windows(cfg, store, windows, console=console)
        shifted_alerts = [a for a in alerts if a.subject.endswith("shifted")]

        # the shift alert triggers an automatic retrain; ECE/AUROC before/after
        demo_auto_retrain(cfg, store, windows[-1], alerts, probe, console)
        console.print(f"Done in {time.time() - t0:.0f} s.")
        return len(shifted_alerts)
