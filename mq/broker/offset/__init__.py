"""Committed consumer offsets per group, topic and queue."""
