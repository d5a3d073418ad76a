"""Errors of the exchanges with Bpifrance Assurance Export or an intermediary.

Each carries a message a credit manager can act on; the ORM side records it
on the document and writes nothing else.
"""


class ExportExchangeError(Exception):
    """Base class: something went wrong producing or sending a document."""


class DocumentInvalid(ExportExchangeError):
    """A produced document does not match the XSD shipped in the addon."""


class HostileXml(ExportExchangeError):
    """An answer carries a DTD, entities or external references: refused."""


class MalformedAnswer(ExportExchangeError):
    """An answer is not the XML the exchange defines."""


class SoapFault(ExportExchangeError):
    """The service answered with a SOAP fault."""

    def __init__(self, message, code=""):
        super().__init__(message)
        self.code = code


class TransportError(ExportExchangeError):
    """The service could not be reached or answered with an HTTP error."""
