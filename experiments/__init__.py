"""Training runs too long for a chapter's time budget; each writes a checkpoint and its log."""
