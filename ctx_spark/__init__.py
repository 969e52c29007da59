"""ctx-spark: listening-context tags for music tracks, learned from playlists and audio on Spark."""

__version__ = "0.1.0"
