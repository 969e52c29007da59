"""Tests of the platform: configuration, command line, packaging, docker files, a real standalone cluster."""
