"""The XML documents of an export policy: built from small dataclasses,
validated against ``data/xsd/bpi_export.xsd`` before anyone sees them.

Plain Python (lxml only): the ORM side fills the dataclasses, this module
knows the format. Bpifrance Assurance Export publishes no format; this one is
the addon's own, in the French terms of the policies.
"""

import pathlib
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from lxml import etree

from .errors import DocumentInvalid, HostileXml, MalformedAnswer

NAMESPACE = "urn:credit-insurance-odoo:bpifrance-export:1"
XSD_PATH = pathlib.Path(__file__).resolve().parent.parent / "data/xsd/bpi_export.xsd"
DTD_REFUSED = (
    "The XML declares a DTD or entities (possible entity expansion or external "
    "reference): refused."
)
POLITICAL_EVENT_CODES = {
    "moratorium": "moratoire",
    "non_transfer": "non_transfert",
    "war_catastrophe": "guerre_catastrophe",
}


@dataclass(frozen=True)
class Header:
    reference: str
    issue_date: date
    insurer: str
    policy_number: str
    seller_name: str
    seller_country: str  # ISO 3166-1 alpha-2
    seller_siren: str = ""


@dataclass(frozen=True)
class Buyer:
    name: str
    country: str
    oecd_category: int | None = None
    national_id: str = ""
    city: str = ""


@dataclass(frozen=True)
class OverdueInvoice:
    number: str
    invoice_date: date
    due_date: date
    currency: str
    amount: Decimal
    unpaid: Decimal
    unpaid_seller_currency: Decimal


@dataclass(frozen=True)
class OverdueDeclaration:
    """Déclaration de menace de sinistre on one buyer abroad."""

    header: Header
    buyer: Buyer
    currency: str  # the seller's currency, of the total
    invoices: tuple[OverdueInvoice, ...]
    political_event_type: str = ""  # moratorium | non_transfer | war_catastrophe
    political_event_start: date | None = None

    @property
    def total_unpaid(self):
        return sum((i.unpaid_seller_currency for i in self.invoices), Decimal(0))


CLAIM_CAUSE_CODES = {
    "insolvency": "insolvabilite",
    "protracted_default": "defaut_prolonge",
    "political": "politique",
}


@dataclass(frozen=True)
class ClaimRequest:
    """Demande d'indemnisation on one buyer abroad."""

    header: Header
    buyer: Buyer
    currency: str  # the seller's currency, of the amounts
    cause: str  # insolvency | protracted_default | political
    invoices: tuple[OverdueInvoice, ...]
    claimed_amount: Decimal
    coverage_pct: Decimal
    indemnity: Decimal
    declaration_reference: str = ""
    political_event_type: str = ""
    political_event_start: date | None = None
    insolvency_date: date | None = None
    expected_date: date | None = None


@dataclass(frozen=True)
class CountryTurnover:
    """Insured turnover of one buyer country: invoices less credit notes."""

    country: str
    invoice_count: int
    amount: Decimal
    oecd_category: int | None = None
    refund_count: int = 0


@dataclass(frozen=True)
class TurnoverDeclaration:
    """Déclaration du chiffre d'affaires export assuré, par pays."""

    header: Header
    date_from: date
    date_to: date
    currency: str
    lines: tuple[CountryTurnover, ...] = field(default_factory=tuple)

    @property
    def total(self):
        return sum((line.amount for line in self.lines), Decimal(0))


# ------------------------------------------------------------------- build


def _amount(value):
    return str(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _sub(parent, tag, text=None, **attributes):
    element = etree.SubElement(parent, f"{{{NAMESPACE}}}{tag}", attributes)
    if text is not None:
        element.text = text.isoformat() if isinstance(text, date) else str(text)
    return element


def _root(tag):
    return etree.Element(
        f"{{{NAMESPACE}}}{tag}", {"version": "1.0"}, nsmap={None: NAMESPACE}
    )


def _header(parent, header):
    entete = _sub(parent, "Entete")
    _sub(entete, "Reference", header.reference)
    _sub(entete, "DateEmission", header.issue_date)
    _sub(entete, "Assureur", header.insurer)
    _sub(entete, "NumeroPolice", header.policy_number)
    assure = _sub(entete, "Assure")
    _sub(assure, "RaisonSociale", header.seller_name)
    if header.seller_siren:
        _sub(assure, "Siren", header.seller_siren)
    _sub(assure, "Pays", header.seller_country)


def build_overdue_declaration(declaration: OverdueDeclaration) -> bytes:
    """The XML of a déclaration de menace de sinistre, validated."""
    root = _root("DeclarationMenaceSinistre")
    _header(root, declaration.header)
    _buyer(root, declaration.buyer)
    political = bool(declaration.political_event_type)
    _sub(root, "CauseSinistre", "politique" if political else "commercial")
    _political_event(root, declaration)
    _invoices(root, declaration.invoices)
    _sub(
        root,
        "TotalImpaye",
        _amount(declaration.total_unpaid),
        devise=declaration.currency,
    )
    return _serialize_valid(root)


def build_claim(claim: ClaimRequest) -> bytes:
    """The XML of a demande d'indemnisation, validated."""
    root = _root("DemandeIndemnisation")
    _header(root, claim.header)
    _buyer(root, claim.buyer)
    if claim.declaration_reference:
        _sub(root, "ReferenceDeclaration", claim.declaration_reference)
    _sub(root, "Cause", CLAIM_CAUSE_CODES[claim.cause])
    _political_event(root, claim)
    if claim.insolvency_date:
        _sub(root, "DateInsolvabilite", claim.insolvency_date)
    _invoices(root, claim.invoices)
    _sub(root, "MontantReclame", _amount(claim.claimed_amount), devise=claim.currency)
    _sub(root, "QuotiteGarantie", _amount(claim.coverage_pct))
    _sub(root, "IndemniteCalculee", _amount(claim.indemnity))
    if claim.expected_date:
        _sub(root, "DateIndemnisationPrevue", claim.expected_date)
    return _serialize_valid(root)


def _buyer(parent, buyer):
    acheteur = _sub(parent, "Acheteur")
    _sub(acheteur, "RaisonSociale", buyer.name)
    _sub(acheteur, "Pays", buyer.country)
    if buyer.oecd_category is not None:
        _sub(acheteur, "CategorieRisquePays", buyer.oecd_category)
    if buyer.national_id:
        _sub(acheteur, "IdentifiantNational", buyer.national_id)
    if buyer.city:
        _sub(acheteur, "Ville", buyer.city)


def _political_event(parent, document):
    if document.political_event_type:
        event = _sub(parent, "EvenementPolitique")
        _sub(event, "Type", POLITICAL_EVENT_CODES[document.political_event_type])
        _sub(event, "DateDebut", document.political_event_start)


def _invoices(parent, invoices):
    creances = _sub(parent, "Creances")
    for invoice in invoices:
        creance = _sub(creances, "Creance")
        _sub(creance, "NumeroFacture", invoice.number)
        _sub(creance, "DateFacture", invoice.invoice_date)
        _sub(creance, "DateEcheance", invoice.due_date)
        _sub(creance, "Devise", invoice.currency)
        _sub(creance, "MontantFacture", _amount(invoice.amount))
        _sub(creance, "MontantImpaye", _amount(invoice.unpaid))
        _sub(
            creance,
            "MontantImpayeDeviseAssure",
            _amount(invoice.unpaid_seller_currency),
        )


def build_turnover_declaration(declaration: TurnoverDeclaration) -> bytes:
    """The XML of an export turnover declaration by country, validated."""
    root = _root("DeclarationChiffreAffaires")
    _header(root, declaration.header)
    periode = _sub(root, "Periode")
    _sub(periode, "DateDebut", declaration.date_from)
    _sub(periode, "DateFin", declaration.date_to)
    _sub(root, "Devise", declaration.currency)
    lignes = _sub(root, "LignesPays")
    for line in sorted(declaration.lines, key=lambda line: line.country):
        ligne = _sub(lignes, "LignePays")
        _sub(ligne, "Pays", line.country)
        if line.oecd_category is not None:
            _sub(ligne, "CategorieRisquePays", line.oecd_category)
        _sub(ligne, "NombreFactures", line.invoice_count)
        _sub(ligne, "NombreAvoirs", line.refund_count)
        _sub(ligne, "ChiffreAffaires", _amount(line.amount))
    _sub(root, "Total", _amount(declaration.total))
    return _serialize_valid(root)


# ---------------------------------------------------------------- validate


@cache
def schema():
    """The XSD shipped in the addon (parsed once, without network)."""
    return etree.XMLSchema(etree.parse(str(XSD_PATH), safe_parser()))


def validate(document: bytes) -> etree._Element:
    """Parse ``document`` safely and check it against the XSD.

    :raises DocumentInvalid: naming the first errors lxml reports.
    """
    root = parse_xml(document)
    xsd = schema()
    if not xsd.validate(root):
        errors = "; ".join(
            f"line {error.line}: {error.message}" for error in list(xsd.error_log)[:3]
        )
        raise DocumentInvalid(f"The document does not match the schema: {errors}")
    return root


def _serialize_valid(root):
    document = etree.tostring(
        root, xml_declaration=True, encoding="UTF-8", pretty_print=True
    )
    validate(document)
    return document


# ------------------------------------------------------------------- parse


def safe_parser():
    """An lxml parser that loads no DTD, expands no entity, reads no network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def parse_xml(document: bytes) -> etree._Element:
    """Parse XML we did not write, refusing DTDs and entities outright.

    :raises HostileXml: the document declares a DTD or entities.
    :raises MalformedAnswer: it is not well-formed XML.
    """
    if isinstance(document, str):
        document = document.encode()
    try:
        tree = etree.fromstring(document, safe_parser()).getroottree()
    except etree.XMLSyntaxError as error:
        # lxml stops on entity loops ("billion laughs") with a syntax error.
        if b"<!DOCTYPE" in document or b"<!ENTITY" in document:
            raise HostileXml(DTD_REFUSED) from error
        raise MalformedAnswer(f"The answer is not well-formed XML: {error}") from error
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise HostileXml(DTD_REFUSED)
    return tree.getroot()


# ----------------------------------------------------------------- summary


def summary(document: bytes) -> dict:
    """What a produced document says, as plain values for a readable summary.

    Read back from the XML itself (validated again), so that the summary
    shows exactly what was filed.
    """
    root = validate(document)
    ns = {"b": NAMESPACE}

    def text(element, path):
        return element.findtext(path, namespaces=ns) or ""

    kind = etree.QName(root).localname
    values = {
        "kind": kind,
        "reference": text(root, "b:Entete/b:Reference"),
        "issue_date": text(root, "b:Entete/b:DateEmission"),
        "insurer": text(root, "b:Entete/b:Assureur"),
        "policy_number": text(root, "b:Entete/b:NumeroPolice"),
        "seller": text(root, "b:Entete/b:Assure/b:RaisonSociale"),
        "seller_siren": text(root, "b:Entete/b:Assure/b:Siren"),
    }
    if kind in ("DeclarationMenaceSinistre", "DemandeIndemnisation"):
        total = root.find(
            "b:TotalImpaye"
            if kind == "DeclarationMenaceSinistre"
            else "b:MontantReclame",
            namespaces=ns,
        )
        values.update(
            buyer=text(root, "b:Acheteur/b:RaisonSociale"),
            buyer_country=text(root, "b:Acheteur/b:Pays"),
            oecd_category=text(root, "b:Acheteur/b:CategorieRisquePays"),
            cause=text(root, "b:CauseSinistre") or text(root, "b:Cause"),
            political_event=text(root, "b:EvenementPolitique/b:Type"),
            political_event_start=text(root, "b:EvenementPolitique/b:DateDebut"),
            lines=[
                {
                    "number": text(line, "b:NumeroFacture"),
                    "invoice_date": text(line, "b:DateFacture"),
                    "due_date": text(line, "b:DateEcheance"),
                    "currency": text(line, "b:Devise"),
                    "amount": text(line, "b:MontantFacture"),
                    "unpaid": text(line, "b:MontantImpaye"),
                    "unpaid_seller_currency": text(line, "b:MontantImpayeDeviseAssure"),
                }
                for line in root.findall("b:Creances/b:Creance", namespaces=ns)
            ],
            total=total.text,
            currency=total.get("devise"),
            declaration_reference=text(root, "b:ReferenceDeclaration"),
            insolvency_date=text(root, "b:DateInsolvabilite"),
            coverage_pct=text(root, "b:QuotiteGarantie"),
            indemnity=text(root, "b:IndemniteCalculee"),
            expected_date=text(root, "b:DateIndemnisationPrevue"),
        )
    else:
        values.update(
            date_from=text(root, "b:Periode/b:DateDebut"),
            date_to=text(root, "b:Periode/b:DateFin"),
            currency=text(root, "b:Devise"),
            lines=[
                {
                    "country": text(line, "b:Pays"),
                    "oecd_category": text(line, "b:CategorieRisquePays"),
                    "invoice_count": text(line, "b:NombreFactures"),
                    "refund_count": text(line, "b:NombreAvoirs"),
                    "amount": text(line, "b:ChiffreAffaires"),
                }
                for line in root.findall("b:LignesPays/b:LignePays", namespaces=ns)
            ],
            total=text(root, "b:Total"),
        )
    return values
