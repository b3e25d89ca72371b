"""Neuroglancer "precomputed" volumes: the ``neuroglancer/precomputed`` provider and its parts.

``info`` (the ``info`` and ``transform.json`` files, scale choice, affines), ``chunks`` (chunk
grid, raw and jpeg decoding, gzip), ``compressed_segmentation``, ``sharding`` (Morton chunk ids,
shard files) with ``murmurhash``, and ``provider`` (fetching and assembling one scale). See
docs/maps.md, "Neuroglancer precomputed".
"""

from siibrad.maps.precomputed.provider import PrecomputedProvider

__all__ = ["PrecomputedProvider"]
