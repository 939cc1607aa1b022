"""The ``webhooks`` plugin: CVAT-compatible webhooks, signed, retried and delivered at least once.

* API: ``/api/webhooks`` (CVAT's §5.1 wire format), plus optional custom request headers. Their
  values are secrets: they are read back as ``{"Name": "***"}``, and writing ``"***"`` back keeps
  the stored value. ``secret`` is never read back.
* Fan-out: ``on_events`` queues one ``webhook_jobs`` row per event and subscribed, active webhook
  (a batch of events in three statements); the delivery id is derived from the event id and the
  webhook id, so an event told twice is queued once.
* Delivery: the periodic job ``webhooks.deliver`` (queue ``webhooks``) claims due rows for a lease
  and sends them; each attempt is a ``webhook_deliveries`` row. Headers: ``X-Signature-256``
  (HMAC-SHA256 of the exact body with the secret), ``X-Webhook-Delivery-Id`` (the same on every
  attempt of one delivery) and ``X-Webhook-Event-Id``.
* Deleted scope: a webhook outlives its deleted project or organization, hidden from the API, until
  the deletion event is delivered to it; ``webhooks.prune_orphans`` then deletes it.

Configuration (``[plugins.webhooks]`` or ``ANNOTA_WEBHOOKS_<KEY>``): ``allow_private_targets``
(default false), ``retry_schedule`` (seconds; default CVAT's), ``connect_timeout`` (3),
``read_timeout`` (10), ``lease`` (60), ``batch_size`` (20).
"""
