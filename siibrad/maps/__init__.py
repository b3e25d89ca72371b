"""siibrad.maps layer (see docs/ARCHITECTURE.md)."""
