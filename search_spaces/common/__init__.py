"""What every effnas package shares and that is not about architectures: user errors
(``errors``), optional dependencies and the extra to install for each (``extras``), atomic file
writes (``atomic``) and the statistics of repeated runs (``stats``).
It sits under ``search_spaces`` because that is the bottom of the package graph: ``nas``,
``scaling`` and ``experiments`` may all import it, and it imports nothing else of effnas."""
