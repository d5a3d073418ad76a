"""Hostile SOAP answers, served by a local server in the tests.

Each one would leak a local file, call another server, or blow up memory if
the client resolved DTDs or entities. Plain WSGI, no Odoo.
"""

from werkzeug.wrappers import Request, Response

DEPOT = "urn:credit-insurance-odoo:bpifrance-export:depot:1"
ENVELOPE = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
    "<soap:Body>"
    f'<r:DeposerDocumentReponse xmlns:r="{DEPOT}">'
    "<r:NumeroDepot>{number}</r:NumeroDepot><r:Statut>recu</r:Statut>"
    "</r:DeposerDocumentReponse></soap:Body></soap:Envelope>"
)


def xxe_answer(canary_url):
    """An answer whose deposit number is an external entity: a local file and
    a call to ``canary_url`` (which records whether anyone fetched it)."""
    return (
        '<?xml version="1.0"?>'
        "<!DOCTYPE soap:Envelope ["
        '<!ENTITY file SYSTEM "file:///etc/passwd">'
        f'<!ENTITY remote SYSTEM "{canary_url}">'
        "]>" + ENVELOPE.format(number="&file;&remote;")
    )


def billion_laughs_answer():
    """An answer whose deposit number expands to 10^9 'lol'."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10)
    ]
    return (
        '<?xml version="1.0"?><!DOCTYPE soap:Envelope ['
        + "".join(entities)
        + "]>"
        + ENVELOPE.format(number="&lol9;")
    )


class FixedAnswer:
    """Answers every POST with ``body`` and records the GETs it receives."""

    def __init__(self, body, status=200, mimetype="text/xml"):
        self.body, self.status, self.mimetype = body, status, mimetype
        self.fetched = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.method == "GET":
            self.fetched.append(request.path)
            response = Response("canary", mimetype="text/plain")
        else:
            response = Response(self.body, status=self.status, mimetype=self.mimetype)
        return response(environ, start_response)
