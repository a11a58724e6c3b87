"""A/B testing: offline comparisons of CV runs, online experiments in the service (assignment,
interleaving, a durable event log), reports from that log, and a traffic simulator that checks the
whole loop. ``python -m hybridrec.ab report|simulate ...``; ``python compare.py a=RUN b=RUN``."""
