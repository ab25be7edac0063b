"""``python -m monitor.cli``: the same as the ``vlm-monitor`` command."""

from monitor.cli.launch import main

main()
