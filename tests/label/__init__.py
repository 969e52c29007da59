"""Tests of the label room."""
