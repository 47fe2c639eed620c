"""aiops: an AI operator for distributed systems, built on kopf."""

__version__ = "0.1.0"
