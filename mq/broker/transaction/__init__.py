"""Transactional messages: half messages, commit and rollback, and the check-back."""
