"""The click layer: one module per verb; `logtrack.cli` assembles them."""
