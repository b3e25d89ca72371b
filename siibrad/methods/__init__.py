"""siibrad.methods layer (see docs/ARCHITECTURE.md)."""
