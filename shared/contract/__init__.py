"""The event contract (contract.md) in code: envelope, event data models, case numbers."""
