"""SIPREC recording clients for tests: sipp (a client we did not write) and a small one of ours.

* ``bodies``: what a recording client sends (SDP offers, RFC 7865 metadata in three vendors'
  dialects, the ``multipart/mixed`` body), pure text builders shared by both clients.
* ``scenario``: renders the sipp scenario templates in this directory (``*.xml``): a whole
  recording session with hold and resume (``siprec_call``), an INVITE cancelled at once
  (``siprec_cancel``), one refused (``siprec_refused``), OPTIONS keepalives (``options``).
* ``runner``: runs sipp against a test server and talks to a running scenario.
* ``uac``: a minimal SIP user agent client over UDP for what sipp cannot send (SDES-SRTP
  keys, broken messages).
"""
