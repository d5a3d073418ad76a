"""Coface CofaServe (JSON services COMPANY, PRODUCT, NOTIFICATION, OVERDUE...).

Implemented from the public contract recorded in DOMAIN.md and Coface's
public CofaServe page (see ``providers/README.md``):

- token ``POST /authentication/v1/token`` with the ``x-api-key`` and
  ``x-cof-policy-number`` headers and a password grant; the account locks
  after five failed logins, so a refused login is never retried by itself;
- company by identifier (COMPANY service) -> Coface's buyer id, the
  EasyNumber; every call carries the contract id.

The field lists of the PRODUCT (limit requests), NOTIFICATION (decisions)
and OVERDUE services are not public: those operations are unavailable.
"""

from .base import ALPHA3, BuyerMatch, InsurerProvider

NOT_PUBLIC = "the CofaServe {service} payload is not public"
# Our identifiers -> CofaServe identifier types, in one place.
IDENTIFIER_TYPES = (("siren", "SIREN"), ("siret", "SIRET"), ("vat", "VAT"))


class CofaceProvider(InsurerProvider):
    code = "coface"
    label = "Coface"

    def _fetch_token(self):
        __, body = self._call(
            "POST",
            "/authentication/v1/token",
            headers=self._service_headers(),
            json_body={
                "grantType": "password",
                "username": self.config.login,
                "password": self.config.password,
            },
            authenticated=False,
            login=True,
        )
        return (
            self._field(body, "accessToken", what="token answer"),
            self._field(body, "expiresIn", what="token answer"),
        )

    def _service_headers(self):
        return {
            "x-api-key": self.config.api_key,
            "x-cof-policy-number": self.config.customer_number,
        }

    def _auth_headers(self):
        return {"Authorization": f"Bearer {self._token}", **self._service_headers()}

    def find_buyer(self, buyer):
        country = ALPHA3.get(buyer.country_code)
        identifier = next(
            (
                (kind, getattr(buyer, name))
                for name, kind in IDENTIFIER_TYPES
                if getattr(buyer, name)
            ),
            None,
        )
        if not country or not identifier:
            raise self._unavailable(
                "finding a buyer without a SIREN, SIRET or VAT number",
                "CofaServe finds companies by identifier",
            )
        __, body = self._call(
            "GET",
            "/company/v1/companies/identifier",
            params={
                "countryCode": country,
                "identifierType": identifier[0],
                "identifierValue": identifier[1],
                "contractId": self.config.customer_number,
            },
        )
        companies = self._list(body, "companies", what="company answer")
        if not companies:
            return None
        return BuyerMatch(
            buyer_ref=str(self._field(companies[0], "easyNumber", what="company")),
            name=companies[0].get("name") or "",
            country_code=buyer.country_code,
        )

    def request_limit(self, request):
        raise self._unavailable(
            "requesting a limit", NOT_PUBLIC.format(service="PRODUCT")
        )

    def find_limit_request(self, request):
        raise self._unavailable(
            "looking a request up", NOT_PUBLIC.format(service="PRODUCT")
        )

    def poll_limit_request(self, request, insurer_reference):
        raise self._unavailable(
            "following a request", NOT_PUBLIC.format(service="PRODUCT")
        )

    def fetch_decisions(self, since, limit=200):
        raise self._unavailable(
            "pulling decision changes", NOT_PUBLIC.format(service="NOTIFICATION")
        )

    def declare_overdue(self, declaration):
        raise self._unavailable(
            "declaring an overdue", NOT_PUBLIC.format(service="OVERDUE")
        )

    def find_declaration(self, declaration):
        raise self._unavailable(
            "looking a declaration up", NOT_PUBLIC.format(service="OVERDUE")
        )

    def fetch_declaration_status(self, insurer_reference):
        raise self._unavailable(
            "following a declaration", NOT_PUBLIC.format(service="OVERDUE")
        )

    def fetch_claims(self, since, limit=200):
        raise self._unavailable("pulling claims", NOT_PUBLIC.format(service="OVERDUE"))

    def fetch_claim(self, claim_ref):
        raise self._unavailable(
            "following a claim", NOT_PUBLIC.format(service="OVERDUE")
        )
