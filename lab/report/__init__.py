"""``report``: one local page comparing runs (``runs``: reading them, ``page``: plots, tables and the page)."""
