"""bias package."""
