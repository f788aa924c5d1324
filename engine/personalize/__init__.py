"""One-click personalization: recording checks, source-frame choice, fine-tune, profiles."""
