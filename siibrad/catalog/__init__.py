"""siibrad.catalog layer (see docs/ARCHITECTURE.md)."""
