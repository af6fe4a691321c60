"""Pages for staff and the phone app."""
