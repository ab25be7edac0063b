"""Drift runs: every detector on every subject's window, results stored and alerted."""
