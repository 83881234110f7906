"""Proving a repository whole: structure (index, packs, trees) and, optionally, every byte.

The checker never stops at the first problem: it collects typed findings (`findings.py`) and
carries on, then names the snapshots each damaged pack or blob hurts.
"""
