"""The ``vlm-monitor`` console script: the CLI, or a clear hint when the host extra is missing.

The console script is installed with the core distribution, which serving
images install without the monitoring host's dependencies (typer, duckdb, ...).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the typer app; exit 2 naming the missing package when the host extra is absent,
    1 with the reason when the store fails under a command."""
    try:
        from monitor.cli.app import app
    except ModuleNotFoundError as exc:
        print(
            f"error: vlm-monitor's command line needs the monitoring host's packages "
            f"({exc.name} is not installed): pip install 'vlm-monitor[monitor]'",
            file=sys.stderr,
        )
        sys.exit(2)
    from monitor.store.migrations import StoreError

    try:
        app()
    except StoreError as exc:  # a store damaged, deleted or full mid-command: the reason, no trace
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
