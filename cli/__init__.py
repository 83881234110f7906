"""The snapstore command line."""
