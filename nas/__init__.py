"""How to search: objectives, strategies, Pareto fronts. Uses ``search_spaces``; receives the
trainer as a callable and never imports training code."""
