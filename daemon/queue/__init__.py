"""The queue between the daemon's processes: the Redis connection (embedded or by URL) and the streams."""
