"""Coordination: the Issue domain model, and (later) its application and handlers."""
