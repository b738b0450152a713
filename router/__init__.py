"""The HTTP service (both API surfaces, their plumbing, the composition root) and the `tierline` command."""
