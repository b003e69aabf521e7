"""The local log analyzer on polars: loading records lazily, aggregations, SQL, report panels."""
