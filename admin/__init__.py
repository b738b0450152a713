"""The supervisor's logic and assets: the met / at-risk rule, the staffing forecast, the
Prometheus text and the dashboard's files. No HTTP here: router/ serves all of it."""
