"""Correctness probes fitted on labelled hidden states (L2, L1, LayerNorm+Linear, stacked)."""
