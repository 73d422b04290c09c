"""driftmon: streaming drift and model monitoring."""

__version__ = "0.1.0"
