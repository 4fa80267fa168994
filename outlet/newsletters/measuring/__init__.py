"""What each sent issue did: clicks, opens, bounces, complaints, unsubscribes and gifts.

- `models.py`: the records (each holds a delivery, never an address) and the
  per-issue counters the admin reads;
- `links.py`: which links of an issue are tracked, the signed tokens, and the
  rewrite of the frozen bodies into tracked ones (done once per skeleton);
- `recording.py`: the click and open buffer (Redis list, drained in batches by a
  task), the attribution of bounces, complaints and unsubscribes, the counters;
- `report.py`: the issue report (figures, links, the 48-hour chart, CSV).
"""
