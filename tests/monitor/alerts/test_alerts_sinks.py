"""Webhook sink against a real local HTTP server; Kafka sink against the real Tansu broker."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from monitor.alerts.dispatch import Alert, LogAlertSink, StoreAlertSink, error_alert, send_alerts
from monitor.alerts.outbox import OutboxSink
from monitor.alerts.sinks import (
    AlertDeliveryError,
    KafkaAlertSink,
    WebhookAlertSink,
    build_sinks,
)
from monitor.config.load import parse_config

ALERT = Alert(
    "calibration_drift",
    "calibration_error",
    "m/v1/*/confidence",
    "critical",
    "calibration_error=0.25 > 0.1",
    0.25,
    0.1,
    1_700_000_000.0,
)


class _Receiver(BaseHTTPRequestHandler):
    received: list = []
    status = 204

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):  # keep pytest output quiet
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Receiver,), {"received": [], "status": 204})
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_webhook_posts_the_alert_as_json(server):
    httpd, handler = server
    sink = WebhookAlertSink(f"http://127.0.0.1:{httpd.server_port}/hooks/vlm", timeout_s=5)
    sink.send(ALERT)
    sink.send(error_alert("mmd", "m/v1/*/state", RuntimeError("boom"), 5.0))
    (path, ctype, body), (_, _, err_body) = handler.received
    assert path == "/hooks/vlm" and ctype == "application/json"
    got = json.loads(body)
    assert got == {"schema": "vlm-monitor.alert/1", **ALERT.__dict__}
    err = json.loads(err_body)  # NaN statistic becomes null, never invalid JSON
    assert err["kind"] == "detector_error" and err["statistic"] is None


def test_webhook_errors_are_raised_and_counted_by_send_alerts(server):
    httpd, handler = server
    handler.status = 500
    sink = WebhookAlertSink(f"http://127.0.0.1:{httpd.server_port}/")
    with pytest.raises(AlertDeliveryError, match="HTTP 500"):
        sink.send(ALERT)
    assert send_alerts([ALERT], [sink, LogAlertSink()]) == 1
    httpd_port = httpd.server_port
    httpd.shutdown()
    httpd.server_close()
    with pytest.raises(AlertDeliveryError, match="unreachable"):
        WebhookAlertSink(f"http://127.0.0.1:{httpd_port}/", timeout_s=2).send(ALERT)
    with pytest.raises(ValueError, match="http"):
        WebhookAlertSink("ftp://example/")


def test_kafka_sink_produces_to_the_alerts_topic(broker, topic_prefix):
    from kafka import KafkaConsumer, TopicPartition

    from monitor.ingest.admin import ensure_topics

    cfg = parse_config(
        {
            "reliability_monitor": {
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "topics": {"alerts": f"{topic_prefix}.alerts"},
                }
            }
        }
    )
    kafka = cfg.reliability_monitor.kafka
    ensure_topics(kafka.client_kwargs(), [kafka.topics.alerts])
    sink = KafkaAlertSink(kafka)
    try:
        sink.send(ALERT)
    finally:
        sink.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=None)
    try:
        tp = TopicPartition(kafka.topics.alerts, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records = []
        for _ in range(20):
            records += consumer.poll(timeout_ms=500).get(tp, [])
            if records:
                break
    finally:
        consumer.close()
    assert len(records) == 1
    assert records[0].key == b"m/v1/*/confidence"
    value = json.loads(records[0].value)
    assert value["kind"] == "calibration_drift" and math.isclose(value["statistic"], 0.25)


def test_build_sinks_from_config(tmp_store):
    cfg = parse_config(
        {
            "reliability_monitor": {
                "alerts": {"sinks": ["log", "store", "webhook"], "webhook_url": "http://h:1/x"}
            }
        }
    )
    sinks = build_sinks(cfg, tmp_store)
    assert [type(s) for s in sinks] == [LogAlertSink, StoreAlertSink, OutboxSink]
    assert isinstance(sinks[2].sink, WebhookAlertSink)  # external sinks go through the outbox
    assert isinstance(build_sinks(parse_config({}), tmp_store)[2].sink, KafkaAlertSink)
    direct = parse_config(
        {"reliability_monitor": {"alerts": {"sinks": ["webhook"], "webhook_url": "http://h:1/x"}}}
    )
    assert isinstance(build_sinks(direct, None)[0], WebhookAlertSink)  # no store: direct
