"""Webhooks: URLs a person registers, called when one of their computations or batches ends.

- registering.py: register, remove and list a person's webhooks (the pages and the API call these);
- destinations.py: where a webhook may go (WEBHOOK_ALLOWED_HOSTS, WEBHOOK_ALLOWED_NETWORKS, never the stack itself);
- signing.py: the Standard Webhooks signature, made and verified (no Django in it: a receiver may use it as it is);
- events.py: the deliveries an end creates (computation.ended, batch.ended);
- delivering.py and posting.py: attempts from the workers, tried again with backoff for a day, and the POST itself.
"""
