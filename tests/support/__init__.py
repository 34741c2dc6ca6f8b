"""Helpers shared by the tests of every tier (fixtures stay in tests/conftest.py)."""
