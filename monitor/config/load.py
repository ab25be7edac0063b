"""Loading ``config.yaml``: YAML, validation, one-line errors naming the key.

Keys that older releases documented but nothing read are refused with the
reason they went away (:data:`REMOVED_KEYS`), so an old file fails loudly
instead of looking configured.
"""

from __future__ import annotations

import os
import re
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
    loc = ".".join(
        p if isinstance(p, str) and p.isprintable() and p.strip() == p and p else repr(p)
        for p in err["loc"]
    )
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    else:
        msg = err["msg"]
        if "input" in err and not isinstance(err["input"], dict) and "error" not in msg:
            msg += f" (got {err['input']!r})"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    msg = msg.removeprefix("Value error, ")
    where = f"{loc}: " if loc else ""
    return f"{source}: {where}{msg}{more}".replace("\n", "\\n")


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
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{source}: top-level key {bad[0]!r} is not a name")
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
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{path}:{where} not valid YAML: {problem}") from None
    data = expand_env(data, str(path))
    return parse_config(data, source=str(path), base_dir=path.resolve().parent)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(data: Any, source: str = "<config>", where: str = "") -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string value by the environment's.

    Secrets (``kafka.sasl_plain_password``, ``alerts.webhook_url``) can so stay out
    of the file. ``$${`` is a literal ``${``. Keys are not expanded.

    Raises
    ------
    ConfigError
        A variable is not set and has no default; the message names the key and
        the variable, never a value.
    """
    if isinstance(data, dict):
        return {
            k: expand_env(v, source, f"{where}.{k}" if where else str(k)) for k, v in data.items()
        }
    if isinstance(data, list):
        return [expand_env(v, source, f"{where}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def value(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{source}: {where}: environment variable {name} is not set")

    parts = data.split("$${")
    return "${".join(_VAR.sub(value, part) for part in parts)
