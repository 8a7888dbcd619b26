"""Workflow panels of the window; each mirrors one ``decongan`` command and runs the same engine code."""
