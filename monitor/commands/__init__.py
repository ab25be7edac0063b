"""Command modules of the ``vlm-monitor`` CLI; importing one registers its commands.

Add a module here (one area each: ingest, alerts, report, retrain, ...) and import it below.
"""

from monitor.commands import (
    alerts,  # noqa: F401, E402 - vlm-monitor alerts
    ingest,  # noqa: F401, E402 - vlm-monitor ingest, status, archive
    report,  # noqa: F401, E402 - vlm-monitor report --week
    retrain,  # noqa: F401, E402 - vlm-monitor retrain, sweep
    run,  # noqa: F401, E402 - vlm-monitor run (the daemon)
    study,  # noqa: F401, E402 - vlm-monitor study (reliability comparison)
)
