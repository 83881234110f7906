"""restorer."""
