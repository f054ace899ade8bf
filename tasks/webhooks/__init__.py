"""Steps of the webhooks concern: subscribers, bodies, signing, delivery, scheduled triggers."""
