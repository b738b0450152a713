"""Caller tiers: the records the CRM gives us, their look-up and their reload."""
