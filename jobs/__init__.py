"""spark-submit entry points; each is thin: arguments, session, one stage runner."""
