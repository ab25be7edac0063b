"""Hot reload of the serving probe from the registry's champion pointer.

A :class:`ProbeWatcher` thread reads ``<registry>/champion.json`` every
``poll_s`` seconds, and at once when a promotion is announced on the Kafka
control topic (see :mod:`retrain.announce`). When the pointer names a new
version, the watcher loads it (SHA-256 checked against the pointer, never
unpickled) and hands it to ``ReliabilityCollector.swap_probe``, which switches
at the next request boundary. A missing or corrupt probe file, or a probe the
collector cannot serve (other layers, pooling or width), leaves the serving
probe in place and is logged once per version with the reason.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collectors.probe.registry import PROMOTED, ProbeRegistryReader

log = logging.getLogger(__name__)


def parse_announcement(raw: bytes | None) -> dict[str, Any] | None:
    """The message if ``raw`` is a probe promotion (JSON, ``type`` and ``version``), else None."""
    try:
        msg = json.loads(raw or b"")
    except (ValueError, TypeError):
        return None
    ok = isinstance(msg, dict) and msg.get("type") == PROMOTED
    return msg if ok and isinstance(msg.get("version"), str) else None


class ProbeWatcher:
    """Background watcher that swaps in the registry's champion.

    Parameters
    ----------
    registry_dir : str or Path
        Root of a probe registry (:mod:`collectors.probe.registry`).
    on_probe : callable
        Called with each newly promoted :class:`LinearProbe`, usually
        ``collector.swap_probe``; an exception it raises is logged and the
        version is not retried.
    current_version : str, optional
        The version already served (not reloaded).
    poll_s : float
        Seconds between pointer reads.
    control_topic : str, optional
        Kafka control topic to follow for immediate reloads.
    client_kwargs : dict, optional
        kafka-python settings for the control-topic consumer.

    Raises
    ------
    ValueError
        ``poll_s <= 0``, or a control topic without ``client_kwargs``.
    """

    def __init__(
        self,
        registry_dir: str | Path,
        on_probe: Callable[[Any], object],
        *,
        current_version: str | None = None,
        poll_s: float = 5.0,
        control_topic: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not poll_s > 0:
            raise ValueError(f"poll_s must be > 0, got {poll_s}")
        if control_topic and not client_kwargs:
            raise ValueError("a control topic needs client_kwargs (bootstrap_servers, ...)")
        self.registry = ProbeRegistryReader(registry_dir)
        self.on_probe, self.poll_s = on_probe, poll_s
        self.control_topic, self.client_kwargs = control_topic, client_kwargs
        self.current_version = current_version
        self.reloads = 0
        self.control_ready = threading.Event()
        self._refused: tuple[str, str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None

    def check_now(self) -> str | None:
        """Read the pointer; hand over a new champion. Return the version handed over, or None."""
        version = None
        try:
            pointer = self.registry.read_pointer()
            if pointer is None or pointer["version"] == self.current_version:
                return None
            version = pointer["version"]
            probe = self.registry.load(version, pointer.get("sha256"))
            self.on_probe(probe)
        except Exception as exc:  # noqa: BLE001 - keep serving whatever happens
            why = (str(version), str(exc))
            if self._refused != why:  # log once per version and reason, retry every poll
                log.warning(
                    "probe reload: keeping %s, cannot switch to %s: %s",
                    self.current_version, version, exc,
                )  # fmt: skip
                self._refused = why
            return None
        log.info("probe reload: %s -> %s", self.current_version, version)
        self.current_version = version
        self.reloads += 1
        return version

    # -- thread ----------------------------------------------------------------
    def start(self) -> ProbeWatcher:
        """Start the background thread (idempotent); the pointer is read first, at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="probe-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the consumer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:  # noqa: BLE001
                log.debug("error closing the control consumer", exc_info=True)
            self._consumer = None

    def __enter__(self) -> ProbeWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_now()
            if self.control_topic and self._consumer is None:
                self._connect()
            if self._consumer is not None:
                self._wait_for_announcement()
            else:
                self._stop.wait(self.poll_s)

    def _connect(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        from collectors.transport.kafka_client import new_kafka_client

        try:
            consumer = new_kafka_client(
                KafkaConsumer, **self.client_kwargs, enable_auto_commit=False, group_id=None
            )
            parts = consumer.partitions_for_topic(self.control_topic)
            if not parts:
                consumer.close()
                return
            consumer.assign([TopicPartition(self.control_topic, p) for p in sorted(parts)])
            consumer.seek_to_end()
            for tp in consumer.assignment():
                consumer.position(tp)  # resolve the end offsets now
            self._consumer = consumer
            self.control_ready.set()
        except Exception as exc:  # noqa: BLE001 - no broker: the pointer poll still works
            log.info("probe reload: control topic unavailable (%s); polling the pointer only", exc)

    def _wait_for_announcement(self) -> None:
        try:
            batches = self._consumer.poll(timeout_ms=int(self.poll_s * 1000))
        except Exception as exc:  # noqa: BLE001
            log.info("probe reload: control topic read failed (%s); reconnecting", exc)
            self._consumer.close()
            self._consumer = None
            self.control_ready.clear()
            return
        for records in batches.values():
            for record in records:
                msg = parse_announcement(record.value)
                if msg is not None:
                    log.info("probe reload: %s announced on %s", msg["version"], self.control_topic)
