"""Grids and patrol zones: boundary import, grid matching and the alert rules."""
