"""Accounts: API keys (`auth.py`): creating, hashing, listing, revoking and checking them."""
