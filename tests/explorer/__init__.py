"""Tests of the report site (the context explorer)."""
