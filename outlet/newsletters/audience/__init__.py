"""The audience's list coming in: subscriber imports from the files people have.

- `formats.py`: the neutral record every export becomes, the recognition of a format
  from its header row, and one pure parser per format (Mailchimp, Substack, Ghost,
  the generic CSV);
- `reading.py`: an upload (CSV in any common encoding, or Mailchimp's zip) as a
  stream of records, a line at a time;
- `importing.py`: the import itself, stored in parts and run a chunk per transaction
  (resumable), with consent records, suppressions and a per-row report;
- `report.py`: the import's counts and the command's report;
- `retention.py`: what stored imports keep of an address, and for how long;
- `models.py`: the import's rows (registered through the app's models.py).
"""
