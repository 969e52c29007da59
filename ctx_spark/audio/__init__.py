"""Audio decoding and the log-mel transform shared by extraction, training and inference."""
