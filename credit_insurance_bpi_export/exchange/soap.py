"""SOAP transport of export documents to an intermediary (zeep).

The WSDL is the one shipped in ``data/wsdl/``: nothing is fetched from the
network to learn the contract. Answers are parsed with DTDs, entities and
external references forbidden, and every failure becomes one of the errors of
:mod:`.errors` with a message a credit manager can act on.
"""

import pathlib
from dataclasses import dataclass

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.transports import Transport

from .errors import HostileXml, MalformedAnswer, SoapFault, TransportError

WSDL_PATH = (
    pathlib.Path(__file__).resolve().parent.parent
    / "data/wsdl/bpi_export_exchange.wsdl"
)
BINDING = "{urn:credit-insurance-odoo:bpifrance-export:depot:1}DepotDocumentsBinding"
DOCUMENT_TYPES = {
    "overdue_declaration": "menace_sinistre",
    "claim": "indemnisation",
    "turnover_declaration": "chiffre_affaires",
}
HARDENED = zeep.Settings(
    strict=True,
    forbid_dtd=True,
    forbid_entities=True,
    forbid_external=True,
    xml_huge_tree=False,
)


@dataclass(frozen=True)
class DepositReceipt:
    """What the intermediary answered to a deposit."""

    deposit_number: str
    accepted: bool
    message: str = ""


class ExportSoapClient:
    """Deposits documents on an intermediary's SOAP service.

    :param url: the service address (replaces the WSDL's address).
    :param timeout: seconds for connecting and for each answer.
    """

    def __init__(self, url, timeout=10.0, session=None):
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()

    def _service(self):
        transport = Transport(
            session=self.session, timeout=self.timeout, operation_timeout=self.timeout
        )
        client = zeep.Client(str(WSDL_PATH), transport=transport, settings=HARDENED)
        return client.create_service(BINDING, self.url)

    def deposit(self, document_type, reference, document: bytes) -> DepositReceipt:
        """Deposit one document; the answer says whether it was received."""
        try:
            answer = self._service().DeposerDocument(
                TypeDocument=DOCUMENT_TYPES[document_type],
                Reference=reference,
                Document=document,
            )
        except zeep.exceptions.Fault as fault:
            raise SoapFault(
                f"The SOAP service refused the document: {fault.message}"
                + (f" (code {fault.code})" if fault.code else ""),
                code=fault.code or "",
            ) from fault
        except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden) as err:
            raise HostileXml(
                "The SOAP answer declares a DTD or entities (possible XXE or "
                "entity expansion attack): refused, nothing recorded."
            ) from err
        except zeep.exceptions.TransportError as error:
            raise _transport_error(error) from error
        except requests.Timeout as error:
            raise TransportError(
                f"The SOAP service did not answer within {self.timeout:g} seconds."
            ) from error
        except requests.RequestException as error:
            raise TransportError(
                f"The SOAP service cannot be reached: {error}"
            ) from error
        except (etree.XMLSyntaxError, zeep.exceptions.Error) as error:
            raise MalformedAnswer(
                f"The SOAP answer is not the expected XML: {error}"
            ) from error
        if answer is None or not getattr(answer, "NumeroDepot", None):
            raise MalformedAnswer("The SOAP answer carries no deposit number.")
        return DepositReceipt(
            deposit_number=answer.NumeroDepot,
            accepted=answer.Statut == "recu",
            message=answer.Message or "",
        )


def _transport_error(error):
    """zeep reports an answer lxml could not parse as a transport error: tell
    a hostile or broken answer apart from an HTTP failure."""
    content = error.content or b""
    if isinstance(content, str):
        content = content.encode()
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        return HostileXml(
            "The SOAP answer declares a DTD or entities (possible XXE or "
            "entity expansion attack): refused, nothing recorded."
        )
    if error.status_code in (200, 500) and content:
        return MalformedAnswer("The SOAP answer is not well-formed XML.")
    return TransportError(
        f"The SOAP service answered with HTTP status {error.status_code}."
    )
