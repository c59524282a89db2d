"""Notifications to other systems: a site's webhook (URL and signing secret), the queue
of deliveries taken from the site's event log (deny alerts, automatic check-outs,
suspensions), and their signed POSTs with retries and backoff, off the door's path.
"""
