"""`make dev` and its parts: the cloud topology on one machine. Not shipped in the package."""
