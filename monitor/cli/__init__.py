"""The ``vlm-monitor`` command line (typer); each module registers one area's commands."""
