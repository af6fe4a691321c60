"""The simulator: phones that walk their grids and speak the real /device protocol."""
