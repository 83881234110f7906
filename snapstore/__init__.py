"""snapstore: a deduplicating, encrypted snapshot store."""
