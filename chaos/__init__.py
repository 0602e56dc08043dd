"""`make chaos`: faults injected into the running suite under load, with the delivery invariants checked
after each one (issue 9). See docs/security.md (runbook) and chaos/chaos.mk."""
