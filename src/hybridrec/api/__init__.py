"""The REST service: a FastAPI app over the inference engine."""
