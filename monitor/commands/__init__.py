"""Command modules of the ``vlm-monitor`` CLI; importing one registers its commands.

Add a module here (one area each: ingest, alerts, report, retrain, ...) and import it below.
"""
