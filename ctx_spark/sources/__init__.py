"""Producers of the three input tables: a synthetic catalogue and the Spotify MPD importer."""
