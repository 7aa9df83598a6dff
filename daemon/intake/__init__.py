"""Intake: watch the shared folder, wait for files to be whole, skip clutter, MD5-dedupe and queue them."""
