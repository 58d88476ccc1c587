"""The web page served at ``/`` (static files, no build step)."""
