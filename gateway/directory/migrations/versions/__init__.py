"""Directory schema revisions."""
