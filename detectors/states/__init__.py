"""Drift of pooled hidden states: MMD and a domain classifier."""
