"""siibrad.features layer (see docs/ARCHITECTURE.md)."""
