"""Evidence terms: what joins the towers in the hybrid recommender, one module each.

Known users' lists: ``item_item`` (EASE^R). Known users' ratings: ``item_knn`` (KNN with baselines),
``tower_residuals`` (the towers' errors on similar films). Users known only by text, through their
``nearest_users``: lists from ``text_neighbours``; ratings from ``cold_baseline`` and
``cold_neighbours``. The interface and shared pieces: ``base``.
"""
