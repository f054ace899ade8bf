"""The booking side a web app calls: models, database, create/reschedule, payload, outbox."""
