"""report: see DESIGN.md."""
