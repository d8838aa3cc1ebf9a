"""arousal: see DESIGN.md."""
