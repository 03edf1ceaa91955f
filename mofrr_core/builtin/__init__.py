"""Plugins shipped with the core, registered through the same hooks as third-party ones."""
