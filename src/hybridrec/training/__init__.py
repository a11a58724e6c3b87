"""Training: one fold's model fitted (``fit``), its whole recommender validated while it trains
(``validation``), its blend weights learned on held-out data (``stacking``), and the final fit on
every rating saved as a bundle (``final_fit``)."""

from hybridrec.training.fit import FittedFold, build_datamodule, fit_fold

__all__ = ["FittedFold", "build_datamodule", "fit_fold"]
