"""The HTTP API: requests in, the services called, responses and event streams out."""
