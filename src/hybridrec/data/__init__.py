"""MovieLens data: download, parsing, splits, text profiles and the LightningDataModule."""
