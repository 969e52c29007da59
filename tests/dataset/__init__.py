"""Tests of the dataset room."""
