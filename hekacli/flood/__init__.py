"""Load generation and delivery verification: flood senders, log-file writers, verifiers."""
