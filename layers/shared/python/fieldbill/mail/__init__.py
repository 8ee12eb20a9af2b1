"""The email adapter: MIME messages built with the standard library, sent through Amazon SES v2.

It holds no records of its own (store/messages.py does) and knows nothing of the local outbox:
locally, moto plays SES and local/moto_ses.py files every sent message in a Maildir.
"""
