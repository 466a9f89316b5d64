"""logtrack: turn web-server access logs into analytics."""

__version__ = "0.1.0"
