"""Test-only helpers (fake servers). Nothing here ships in the package."""
