"""tailtune: fine-tune transformer text classifiers on class-imbalanced (long-tailed) data."""

from __future__ import annotations

__version__ = "0.1.0"
