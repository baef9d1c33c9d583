"""Validation of X12 against the definitions (SNIP levels 1 and 2)."""
