"""Model performance: delayed labels joined to predictions, and estimates before they arrive."""
