"""The alert outbox: an alert stored is delivered once the endpoint recovers; bounded attempts;
secrets never logged."""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from monitor.alerts.dispatch import Alert, send_alerts
from monitor.alerts.outbox import OutboxSink, deliver_all
from monitor.alerts.sinks import AlertDeliveryError, WebhookAlertSink, redact


def _alert(i: int) -> Alert:
    return Alert("score_drift", "kl_divergence", f"m/v1/{i}", "warning", "kl=0.2 > 0.15",
                 0.2, 0.15, 1_700_000_000.0 + i)  # fmt: skip


class _Hook(BaseHTTPRequestHandler):
    status, received, delay_s = 204, [], 0.0

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(type(self).delay_s)
        type(self).received.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    handler = type("H", (_Hook,), {"received": [], "status": 503, "delay_s": 0.0})
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()


def test_alerts_stored_while_the_endpoint_fails_are_all_delivered_after_it_recovers(
    tmp_store, hook
):
    httpd, handler = hook
    url = f"http://127.0.0.1:{httpd.server_port}/services/SECRET-TOKEN"
    sink = OutboxSink(tmp_store, "webhook", WebhookAlertSink(url, 2.0), backoff_s=(0.0, 0.0))
    assert send_alerts([_alert(i) for i in range(11)], [sink]) == 0  # queued, never raised
    assert sink.deliver() == (0, 1)  # the endpoint answers 503: kept, retried later
    handler.status = 204
    delivered = 0
    for _ in range(5):
        delivered += deliver_all([sink])[0]
    assert delivered == 11 and len(handler.received) == 11 + 1
    assert tmp_store.outbox_counts() == {"webhook": {"delivered": 11, "pending": 0}}


def test_failed_attempts_back_off_and_survive_a_restart(tmp_path, hook):
    from monitor.store.database import Store

    httpd, _ = hook
    url = f"http://127.0.0.1:{httpd.server_port}/x"
    with Store(tmp_path / "m.duckdb") as store:
        sink = OutboxSink(store, "webhook", WebhookAlertSink(url, 2.0), backoff_s=(60.0, 60.0))
        sink.send(_alert(0))
        assert sink.deliver() == (0, 1)
        assert sink.deliver() == (0, 0)  # not due again for 60 s
    with Store(tmp_path / "m.duckdb") as store:  # the daemon restarted: the alert is still owed
        assert store.outbox_counts() == {"webhook": {"delivered": 0, "pending": 1}}
        assert len(store.due_alerts("webhook", time.time() + 61)) == 1


def test_a_hanging_or_trickling_webhook_is_bounded_in_total(hook):
    httpd, handler = hook
    handler.delay_s = 5.0
    sink = WebhookAlertSink(f"http://127.0.0.1:{httpd.server_port}/", timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(AlertDeliveryError, match="did not answer within 0.5 s"):
        sink.send(_alert(0))
    assert time.monotonic() - t0 < 1.5

    listener = socket.socket()  # accepts, then sends one byte every 0.2 s forever
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        try:
            for _ in range(100):
                conn.sendall(b"H")
                time.sleep(0.2)
        except OSError:
            pass

    threading.Thread(target=trickle, daemon=True).start()
    slow = WebhookAlertSink(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(AlertDeliveryError, match="did not answer"):
        slow.send(_alert(0))
    assert time.monotonic() - t0 < 2.0
    listener.close()


def test_the_webhook_url_path_is_never_logged(tmp_store, caplog):
    url = "http://127.0.0.1:9/services/T000/B000/SECRET-TOKEN"
    sink = OutboxSink(tmp_store, "webhook", WebhookAlertSink(url, 0.5))
    caplog.set_level(logging.DEBUG)
    sink.send(_alert(0))
    sink.deliver()
    text = caplog.text + repr(sink) + str(tmp_store.execute("SELECT last_error FROM alert_outbox"))
    assert "SECRET-TOKEN" not in text and "http://127.0.0.1:9/…" in text
    assert redact("https://u:pw@hooks.example:8443/a?b=c") == "https://hooks.example:8443/…"
