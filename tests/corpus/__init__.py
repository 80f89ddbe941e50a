"""Malformed-input corpus: a generator of bad files over every reader and the checkpoint loader, a runner that
puts each file through ``core.api`` and the CLI, and a report (``python -m tests.corpus.report``)."""
