"""Getting events out of the serving process without blocking it: Kafka emitter, spill file."""
