"""REST endpoints for command-centre staff; GeoJSON out."""
