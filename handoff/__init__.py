"""The after-commit handoff a web app imports: start a committed event's deployment runs off
the booker's path (`PostCommitDispatcher`), and the outbox relay that finishes what a handoff
could not."""

from handoff.dispatch import DispatchConfigError, DispatchOutcome, PostCommitDispatcher

__all__ = ["DispatchConfigError", "DispatchOutcome", "PostCommitDispatcher"]
