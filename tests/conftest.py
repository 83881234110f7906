"""Shared fixtures for every layer."""
