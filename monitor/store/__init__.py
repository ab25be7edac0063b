"""The DuckDB store: schema, migrations, writes, window reads, retention to Parquet."""
