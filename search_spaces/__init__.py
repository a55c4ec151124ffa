"""What an architecture is: specs, the block-string codec, scaling rules, the builder,
the registry of named models and the cost model. Imports nothing from the rest of effnas."""

from effnas.search_spaces.builder import Network, build
from effnas.search_spaces.codec import decode_block, decode_stages, encode_block, encode_stages
from effnas.search_spaces.counts import Counts, count_macs, counts
from effnas.search_spaces.registry import get, load_spec, names, register
from effnas.search_spaces.rules import OFFICIAL, round_filters, round_repeats, scale, scale_official, scale_resolution
from effnas.search_spaces.spec import BlockSpec, NetworkSpec, safe_name

__all__ = [
    "OFFICIAL", "BlockSpec", "Counts", "Network", "NetworkSpec", "build", "count_macs", "counts", "decode_block",
    "decode_stages",
    "encode_block", "encode_stages", "get", "load_spec", "names", "register", "round_filters", "round_repeats",
    "safe_name", "scale", "scale_official", "scale_resolution",
]
