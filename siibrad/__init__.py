"""siibrad: the siibra brain-atlas toolkit as a warm, shared, per-user daemon."""

__version__ = "0.1.0"
PROTOCOL_VERSION = "1.0.0"
