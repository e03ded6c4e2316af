"""Coordination: the Issue domain model and the `Coordination` application (intake, commands,
escalation). The NATS and HTTP edges that drive it live elsewhere."""
