"""When and how the daemon retrains: triggers, reading labelled states, recording outcomes."""
