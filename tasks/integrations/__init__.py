"""Steps of the integrations concern: push, chat sync, Customer.io, contacts, analytics."""
