#!/usr/bin/env python3
"""A sandbox SOAP intermediary receiving export credit insurance documents.

    python3 credit_insurance_bpi_export/sandbox/soap_server.py --port 8071

Implements ``data/wsdl/bpi_export_exchange.wsdl``: ``DeposerDocument`` checks
the document against the addon's XSD and answers a deposit number, or a SOAP
fault naming what is wrong. Requests are parsed without DTDs or entities.
Plain Python, lxml and werkzeug: it runs without Odoo. ``GET /health``,
``GET /soap?wsdl`` and ``GET /_admin/deposits`` (JSON) help demos and tests.

This is not a Bpifrance service: Bpifrance Assurance Export publishes no API.
"""

import argparse
import base64
import binascii
import itertools
import json
import logging
import pathlib
import sys
import threading

from lxml import etree
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

if __package__:
    from ..exchange import documents
    from ..exchange.errors import ExportExchangeError
    from ..exchange.soap import WSDL_PATH
else:  # run as a script: import the plain-Python modules of the addon
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    from exchange import documents
    from exchange.errors import ExportExchangeError
    from exchange.soap import WSDL_PATH

_logger = logging.getLogger("sandbox_soap")

DEFAULT_PORT = 8071
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DEPOT = "urn:credit-insurance-odoo:bpifrance-export:depot:1"
ROOTS = {
    "menace_sinistre": "DeclarationMenaceSinistre",
    "indemnisation": "DemandeIndemnisation",
    "chiffre_affaires": "DeclarationChiffreAffaires",
}


def envelope(body_xml):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{body_xml}'
        "</soap:Body></soap:Envelope>"
    )


def soap_response(body_xml, status=200):
    return Response(envelope(body_xml), status=status, mimetype="text/xml")


def fault(code, message):
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return soap_response(
        f"<soap:Fault><faultcode>soap:{code}</faultcode>"
        f"<faultstring>{escaped}</faultstring></soap:Fault>",
        status=500,
    )


class SandboxSoapIntermediary:
    """The WSGI application; deposits are kept in memory (``self.deposits``)."""

    def __init__(self):
        self.deposits = []
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.method == "GET" and request.path == "/health":
            response = Response("ok", mimetype="text/plain")
        elif request.method == "GET" and request.path == "/soap":
            response = Response(WSDL_PATH.read_bytes(), mimetype="text/xml")
        elif request.method == "GET" and request.path == "/_admin/deposits":
            response = Response(json.dumps(self.deposits), mimetype="application/json")
        elif request.method == "POST" and request.path == "/soap":
            response = self.deposit(request.get_data())
        else:
            response = Response("not found", status=404, mimetype="text/plain")
        return response(environ, start_response)

    def deposit(self, body):
        try:
            root = documents.parse_xml(body)
        except ExportExchangeError as error:
            return fault("Client", f"Requête refusée : {error}")
        call = root.find(f"{{{SOAP_ENV}}}Body/{{{DEPOT}}}DeposerDocument")
        if call is None:
            return fault("Client", "Opération inconnue : DeposerDocument attendu.")
        document_type = call.findtext(f"{{{DEPOT}}}TypeDocument") or ""
        reference = call.findtext(f"{{{DEPOT}}}Reference") or ""
        if document_type not in ROOTS:
            return fault("Client", f"Type de document inconnu : {document_type!r}.")
        try:
            content = base64.b64decode(
                call.findtext(f"{{{DEPOT}}}Document") or "", validate=True
            )
            document = documents.validate(content)
        except (binascii.Error, ExportExchangeError) as error:
            return fault("Client", f"Document non conforme au schéma : {error}")
        if etree.QName(document).localname != ROOTS[document_type]:
            return fault(
                "Client",
                f"Le document n'est pas du type annoncé ({document_type}).",
            )
        if any(d["reference"] == reference for d in self.deposits):
            return fault("Client", f"Le document {reference} a déjà été déposé.")
        with self._lock:
            number = f"DEP-{next(self._numbers):06d}"
            self.deposits.append(
                {"number": number, "type": document_type, "reference": reference}
            )
        return soap_response(
            f'<r:DeposerDocumentReponse xmlns:r="{DEPOT}">'
            f"<r:NumeroDepot>{number}</r:NumeroDepot><r:Statut>recu</r:Statut>"
            "<r:Message>Document reçu</r:Message></r:DeposerDocumentReponse>"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(message)s")
    server = make_server(args.host, args.port, SandboxSoapIntermediary(), threaded=True)
    _logger.info(
        "Sandbox SOAP intermediary on http://%s:%s/soap", args.host, server.port
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        _logger.info("Sandbox SOAP intermediary stopped")
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
