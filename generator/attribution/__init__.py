"""attribution package."""
