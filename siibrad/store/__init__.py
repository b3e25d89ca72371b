"""siibrad.store layer (see docs/ARCHITECTURE.md)."""
