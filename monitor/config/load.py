"""Loading ``config.yaml``: YAML, validation, one-line errors naming the key.

Keys that older releases documented but nothing read are refused with the
reason they went away (:data:`REMOVED_KEYS`), so an old file fails loudly
instead of looking configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.config.settings import Config

DEFAULT_CONFIG_NAME = "config.yaml"
REMOVED_KEYS = {
    "architecture": "the fusion type comes from the architecture registry; set `family` to "
    "override the detected model family",
    "probe.hidden_dim": "the probe's width is read from the model's config and checked when the "
    "collector attaches",
    "probe.calibration_method": "set retrain.calibration (auto | temperature | isotonic)",
    "probe.temperature": "each probe file carries its own fitted calibration",
    "logging.log_confidence_distributions": "every drift run stores the confidence histogram "
    "of each window (detector_runs) and the reports draw it",
    "routing.fallback_strategy": "what a fallback request does is the serving code's choice; "
    "the gate only returns the decision",
}


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message is one line."""


def _removed(source: str, data: dict[str, Any]) -> None:
    rm = data.get("reliability_monitor")
    if not isinstance(rm, dict):
        return
    for dotted, why in REMOVED_KEYS.items():
        node: Any = rm
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            raise ConfigError(f"{source}: reliability_monitor.{dotted}: removed key: {why}")


def _format_error(source: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    else:
        msg = err["msg"]
        if "input" in err and not isinstance(err["input"], dict) and "error" not in msg:
            msg += f" (got {err['input']!r})"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{source}: {loc}: {msg}{more}"


def parse_config(data: Any, source: str = "<config>", base_dir: Path | None = None) -> Config:
    """Validate an already-parsed mapping.

    Raises
    ------
    ConfigError
        With one line ``source: dotted.key: what is wrong``.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    if "base_dir" in data:
        raise ConfigError(f"{source}: base_dir: unknown key")
    _removed(source, data)
    try:
        return Config(**data, base_dir=base_dir or Path.cwd())
    except ValidationError as exc:
        raise ConfigError(_format_error(source, exc)) from None


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a config file.

    Parameters
    ----------
    path : str or Path, optional
        The YAML file. ``None`` uses ``./config.yaml`` when it exists, else the
        built-in defaults (bundled reference model, local broker, local DuckDB file).

    Raises
    ------
    ConfigError
        The file is missing, is not YAML, or fails validation.
    """
    if path is None:
        candidate = Path.cwd() / DEFAULT_CONFIG_NAME
        if not candidate.exists():
            return Config()
        path = candidate
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    return parse_config(data, source=str(path), base_dir=path.resolve().parent)
