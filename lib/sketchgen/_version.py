"""The package version, in a leaf module so metadata can record it without importing the facade."""

__version__ = "0.1.0"
