"""Extra caches: LimitedDisk."""
