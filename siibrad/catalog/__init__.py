"""The catalogue: siibra's atlases, spaces, parcellations, maps and region trees, indexed.

``from siibrad.catalog import Catalog`` is the in-process API (contract A) shared by the daemon,
tests and benchmarks; ``siibrad.catalog.model`` holds the frozen value objects it returns.
"""

from siibrad.catalog.catalog import MAX_SPEC_CHARS, Catalog
from siibrad.catalog.loader import ConfigurationProblem

__all__ = ["MAX_SPEC_CHARS", "Catalog", "ConfigurationProblem"]
