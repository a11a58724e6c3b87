"""Models: the HybridRecModel (towers, rating mappings), its LightningModule, and baselines."""
