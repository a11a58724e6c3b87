"""Inference: model bundles (save, verify, load) and the engine that answers requests from one."""
