"""spark-submit entry points, one per Spark stage: a few lines each around ``ctx_spark.cli``; not installed."""
