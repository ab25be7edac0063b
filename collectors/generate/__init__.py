"""The collector under transformers' ``generate``: prefill detection, hooks, the collector."""
