"""Tests of the shard format: its contract, the plain pyarrow reader, the frozen fixtures."""
