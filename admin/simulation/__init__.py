"""The what-if simulator: a day (or any period) run through Tierline's own engine on a virtual clock."""
