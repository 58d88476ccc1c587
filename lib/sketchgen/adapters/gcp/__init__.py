"""Google Cloud adapters. Import each from its module; nothing here loads google.cloud."""
