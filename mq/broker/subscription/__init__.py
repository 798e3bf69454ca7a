"""Subscription group configs and the tag and SQL92 filters applied to pulls."""
