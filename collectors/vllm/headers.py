"""Response headers for ``vllm serve``: a client reads the score of its own request.

vLLM's OpenAI-compatible server takes FastAPI middleware by qualified name
(``--middleware``). :func:`score_headers` lets a non-streaming chat or text
completion through, reads the response's ``id``, asks the workers for that request's
result with one ``collective_rpc`` (``vlm_monitor_peek``, so the worker extension must
be loaded: ``--worker-extension-cls collectors.vllm.extension.MonitorWorkerExtension``)
and returns the same body with these headers:

- ``x-vlm-monitor-confidence``: calibrated probability that the answer is correct;
- ``x-vlm-monitor-decision``: ``serve``, ``fallback`` or ``self_consistency``;
- ``x-vlm-monitor-probe``: the probe version that scored it;
- ``x-vlm-monitor-unscored``: the reason, when the request was left unscored.

Streaming responses pass unchanged (their headers leave before the body). A failed
lookup adds no header and never fails the response.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger("vllm.vlm_monitor")
PATHS = ("/v1/chat/completions", "/v1/completions")
PREFIX = "x-vlm-monitor-"


def headers_for(result: dict[str, Any] | None) -> dict[str, str]:
    """The response headers for one worker result (empty when there is none)."""
    if not result:
        return {}
    if not result.get("scored"):
        return {PREFIX + "unscored": str(result.get("reason") or "unknown")[:200]}
    return {
        PREFIX + "confidence": f"{float(result['confidence']):.6f}",
        PREFIX + "decision": str(result["decision"]),
        PREFIX + "probe": str(result["probe_version"]),
    }


async def score_headers(request: Any, call_next: Any) -> Any:
    """FastAPI ``http`` middleware: add the collector's verdict to completion responses."""
    response = await call_next(request)
    if request.method != "POST" or request.url.path not in PATHS:
        return response
    if not response.headers.get("content-type", "").startswith("application/json"):
        return response  # streaming (text/event-stream) or an error page
    from starlette.responses import Response

    body = b"".join([chunk async for chunk in response.body_iterator])
    extra: dict[str, str] = {}
    try:
        request_id = json.loads(body).get("id")
        if isinstance(request_id, str):
            client = request.app.state.engine_client
            parts = await client.collective_rpc("vlm_monitor_peek", args=([request_id],))
            merged: dict[str, Any] = {}
            for part in parts:
                merged.update(part or {})
            extra = headers_for(merged.get(request_id))
    except Exception:  # noqa: BLE001 - the answer goes out with or without its score
        log.exception("vlm-monitor: could not attach the score headers")
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(
        content=body,
        status_code=response.status_code,
        headers={**headers, **extra},
        media_type=response.media_type,
    )
