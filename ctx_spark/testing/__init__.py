"""Fixture generators for tests and benchmarks; never imported by a stage."""
