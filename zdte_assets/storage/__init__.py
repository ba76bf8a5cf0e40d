"""The object store (local directory or S3) with atomic writes."""
