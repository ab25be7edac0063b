"""Calibration on labelled events (ECE, MCE, Brier) and label-free accuracy estimates."""
