"""The built-in sandbox insurer (a small WSGI server); see README.md.

Not imported by the Odoo addon itself: run it with
``python3 credit_insurance/sandbox/server.py`` or start it in a thread from a
test with :func:`credit_insurance.sandbox.server.start_in_thread`.
"""
