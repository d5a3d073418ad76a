"""18.0.1.0.1: an Allianz Trade connection has one base URL per API.

Allianz Trade's sandbox puts its environment marker at a different place in
each API's path (``/uatm/v1/idp``, ``/uatm/riskinfo/v3``, ``/search/uatm-v2``),
so the single ``api_base_url`` of 18.0.1.0.0 is replaced, for Allianz Trade
connections, by ``login_api_url``, ``search_api_url`` and ``cover_api_url``.

The new columns were just filled with the insurer's defaults for each
connection's environment. A connection whose base URL pointed elsewhere (a
proxy, a sandbox) keeps its host: each API's path for the environment is put
after it, as 18.0.1.0.0 put its fixed paths after it.
"""

from urllib.parse import urlsplit

from odoo import SUPERUSER_ID, api

API_URL_FIELDS = {
    "idp": "login_api_url",
    "search": "search_api_url",
    "riskinfo": "cover_api_url",
}


def split_allianz_base_urls(env):
    """Give each Allianz Trade connection one URL per API, from its old base."""
    from odoo.addons.credit_insurance.providers.allianz_trade import (
        API_URL_DEFAULTS,
    )

    insurers = (
        env["credit.insurance.insurer"]
        .with_context(active_test=False, tracking_disable=True)
        .search([("provider", "=", "allianz_trade"), ("api_base_url", "!=", False)])
    )
    for insurer in insurers:
        base = insurer.api_base_url.rstrip("/")
        defaults = API_URL_DEFAULTS.get(insurer.environment) or {}
        insurer.write(
            {
                field_name: base + urlsplit(defaults[api]).path
                for api, field_name in API_URL_FIELDS.items()
                if api in defaults
            }
        )
    return insurers


def migrate(cr, version):
    if not version:
        return
    split_allianz_base_urls(api.Environment(cr, SUPERUSER_ID, {}))
