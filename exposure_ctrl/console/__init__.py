"""console: see DESIGN.md."""
