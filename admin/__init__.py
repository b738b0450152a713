"""The supervisor and administration surface: service levels, callbacks, tier maintenance."""
