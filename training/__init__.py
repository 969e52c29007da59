"""Training, evaluation and inference of the context CNN on mel shards (TensorFlow/Keras)."""
