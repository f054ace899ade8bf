"""Signed webhook delivery, shared by the webhooks concern and the due-work sweep: the body,
signatures, the URL guard, one HTTP attempt, the delivery log and the scheduled triggers."""
