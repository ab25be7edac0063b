"""The store's ``probes`` table as the registry's lifecycle: every version, one champion.

The registry is the source of truth (its champion pointer and ``history.jsonl`` of
promotions, :class:`retrain.registry.ProbeRegistry`); :func:`sync_probes` writes
one row per version it holds:

- ``champion``: the version the pointer names, since its promotion, with the
  promotion's reason. Exactly one per model;
- ``retired``: a version that was champion once, since the promotion that
  replaced it ("replaced by v3: all rules hold");
- ``rejected``: a version published but never promoted, with the rules it failed.

Each row carries the version's held-out figures from its own metadata
(``evaluation``: AUROC, ECE, Brier and their intervals on the test split).
It runs after every retrain (the daemon's, ``vlm-monitor retrain``, the demo's)
and when the daemon starts, so the table never disagrees with what the
collectors load.
"""

from __future__ import annotations

import logging
from typing import Any

from collectors.probe.linear import ProbeFileError
from retrain.registry import ProbeRegistry

log = logging.getLogger(__name__)


def lifecycle(registry: ProbeRegistry) -> list[dict[str, Any]]:
    """One row per version that loads: version, status, status_ts, reason, probe.

    Returns
    -------
    list of dict
        Oldest version first; ``probe`` is the loaded
        :class:`collectors.probe.linear.LinearProbe` (its ``metadata`` holds the
        held-out evaluation).
    """
    history = registry.history()
    champion = history[-1]["version"] if history else None
    promoted_at = {h["version"]: h for h in history}  # the last promotion of each
    replaced: dict[str, dict[str, Any]] = {}
    for before, after in zip(history, history[1:]):
        if before["version"] != after["version"]:
            replaced[before["version"]] = after
    rows = []
    for version in registry.versions():
        try:
            probe = registry.load(version)
        except (ProbeFileError, OSError) as exc:
            log.warning("probe %s in %s unreadable, left out: %s", version, registry.root, exc)
            continue
        meta = probe.metadata or {}
        path = registry.versions_dir / version
        created = float(meta.get("created_ts") or (path / "probe.json").stat().st_mtime)
        if version == champion:
            event = promoted_at[version]
            row = ("champion", event.get("ts"), event.get("reason") or "promoted")
        elif version in replaced:
            nxt = replaced[version]
            why = f"replaced by {nxt['version']}"
            if nxt.get("reason"):
                why += f": {nxt['reason']}"
            row = ("retired", nxt.get("ts"), why)
        else:
            rules = (meta.get("evaluation") or {}).get("rules") or {}
            failed = [k for k, ok in rules.items() if not ok]
            why = "failed: " + ", ".join(failed) if failed else "published, never promoted"
            row = ("rejected", created, why)
        status, status_ts, reason = row
        rows.append({
            "version": version, "status": status, "reason": reason, "created_ts": created,
            "status_ts": float(status_ts if status_ts is not None else created),
            "path": str(path), "probe": probe,
        })  # fmt: skip
    return rows


def sync_probes(store: Any, registry: ProbeRegistry, model_id: str) -> list[dict[str, Any]]:
    """Write :func:`lifecycle` into ``store``'s ``probes`` table; return the rows written."""
    rows = lifecycle(registry)
    for row in rows:
        probe = row["probe"]
        meta = probe.metadata or {}
        evaluation = meta.get("evaluation") or {}
        metrics = {
            k: evaluation[k] for k in ("challenger", "champion", "rules", "chance_p_value")
            if k in evaluation
        }  # fmt: skip
        store.record_probe(
            row["version"], meta.get("model_id") or model_id, int(probe.layer),
            str(probe.pooling), int(probe.hidden_dim),
            row["path"], status=row["status"], metrics=metrics or None,
            ts=row["created_ts"], status_ts=row["status_ts"], reason=row["reason"],
        )  # fmt: skip
    return rows


def sync_from_config(cfg: Any, store: Any) -> list[dict[str, Any]]:
    """:func:`sync_probes` from ``retrain.registry_dir`` (none: nothing to do).

    Never raises: a registry that cannot be read is logged at WARNING and the store
    keeps its rows (the daemon must start regardless).
    """
    rm = cfg.reliability_monitor
    if not rm.retrain.registry_dir.is_dir():
        return []
    try:
        return sync_probes(store, ProbeRegistry(rm.retrain.registry_dir), rm.model.id)
    except Exception as exc:  # noqa: BLE001
        log.warning("probe lifecycle not synced from %s: %r", rm.retrain.registry_dir, exc)
        return []
