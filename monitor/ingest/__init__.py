"""Kafka -> DuckDB ingest: partition assignment, batch decoding, exactly-once transactions."""
