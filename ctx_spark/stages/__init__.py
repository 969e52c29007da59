"""Stage runners: read a stage's inputs, run its DataFrame functions, write its outputs.

Each runner is what a spark-submit job calls after parsing arguments, and what the refresh
pipeline chains; it returns the stage's report as a dict.
"""
