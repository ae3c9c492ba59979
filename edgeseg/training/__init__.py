"""Training of compact edge models (build side: imports torch)."""
