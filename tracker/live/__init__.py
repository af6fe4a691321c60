"""Live fan-out: the /live namespace and the one place that emits to command-centre viewers."""
