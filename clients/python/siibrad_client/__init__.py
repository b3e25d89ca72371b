"""Thin Python client of the siibrad daemon."""
