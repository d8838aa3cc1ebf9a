"""session: see DESIGN.md."""
