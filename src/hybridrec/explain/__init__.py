"""Explanations: evidence from the data and the model, then a sentence (Gemini, or grounded offline)."""
