"""Reading trained results: method and family comparisons with computed verdicts (``compare``)."""
