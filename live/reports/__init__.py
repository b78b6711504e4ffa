"""Documents for people, read from the listen ledger: an agent's disclosure and the
works-council report, as CSV and PDF, in English and German.

* ``sessions``: ``listen.started`` entries joined with their ``listen.ended``;
* ``periods``: days, times, months and time zones as people write them;
* ``disclosure`` and ``monthly``: what a disclosure and a month's report hold;
* ``csvfiles``, ``disclosure_pdf``, ``report_pdf`` (with ``pdf`` and ``strings``): the forms;
* ``service``: the audit service that makes them for the HTTP API and the command line and
  records every one (``export.made``).

The ledger layer (``live.audit``) never imports this package.
"""
