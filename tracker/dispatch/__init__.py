"""Dispatch: incidents, the nearest people to send, and the tasks that follow them."""
