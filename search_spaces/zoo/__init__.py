"""The built-in models, written as their papers' tables: :mod:`.classic` (EfficientNet B0-B8/L2 and Lite,
MnasNet, MobileNetV1/V2, ResNet, the small test networks) and :mod:`.efficientnetv2` (EfficientNetV2
S/M/L and B0-B3, with Fused-MBConv stages)."""

from collections.abc import Callable

from effnas.search_spaces.spec import NetworkSpec
from effnas.search_spaces.zoo import classic, efficientnetv2

#: The built-in models, in the order ``effnas models list`` shows them: name -> a factory of a fresh spec.
#: :mod:`effnas.search_spaces.registry` registers them on first use (this package imports no registry).
BUILTIN: dict[str, Callable[[], NetworkSpec]] = {**classic.BUILTIN, **efficientnetv2.BUILTIN}

__all__ = ["BUILTIN"]
