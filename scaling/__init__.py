"""How to scale: compound coefficients, grid search, families, curve fits.

Uses ``search_spaces``; receives the trainer as a callable and never imports training code."""

from scaling.compound import PAPER_COEFFICIENTS, Multipliers, check_coefficients, compound, member

__all__ = ["PAPER_COEFFICIENTS", "Multipliers", "check_coefficients", "compound", "member"]
