"""The serving probe: linear probe, calibration maps, projection, registry reads and hot reload."""
