"""Adapters behind the ports: ``local`` (no account needed) and ``gcp``; ``S3BlobStore``."""
