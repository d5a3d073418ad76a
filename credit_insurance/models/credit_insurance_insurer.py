import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlsplit

import requests

from odoo import api, fields, models, modules, tools
from odoo.exceptions import UserError, ValidationError
from odoo.tools.translate import LazyTranslate

from ..providers import (
    BuyerIdentity,
    InsurerAuthError,
    InsurerError,
    InsurerProvider,
    InsurerRejected,
    InsurerTemporaryError,
    ProviderConfig,
    get_provider_class,
)

_logger = logging.getLogger(__name__)
_lt = LazyTranslate(__name__)

# Changing any of these gives refused credentials another chance.
CREDENTIAL_FIELDS = ("api_key", "client_id", "client_secret", "login", "password")
# The insurer's APIs that have a base URL each (Allianz Trade) -> their field.
API_URL_FIELDS = {
    "idp": "login_api_url",
    "search": "search_api_url",
    "riskinfo": "cover_api_url",
}

# What a user reads of a provider error, by its code (providers/errors.py),
# in one place. The insurer's own message (detail) is quoted as it came.
ERROR_TEXTS = {
    "auth_refused": _lt(
        "%(insurer)s refused the credentials (HTTP %(status)s): %(detail)s"
    ),
    "login_refused": _lt(
        "%(insurer)s refused the login (HTTP %(status)s). No login is tried again "
        "until the credentials are changed: the insurer locks the account after "
        "five failed logins. Its message: %(detail)s"
    ),
    "account_locked": _lt(
        "%(insurer)s locked the account after repeated failed logins: no call for "
        "%(minutes)s minutes. Check the credentials before trying again."
    ),
    "route_refused": _lt(
        "%(insurer)s refused the call %(method)s %(path)s (HTTP 403): this address "
        "is not open to your account. Check the API base URL and your contract; "
        "the credentials are not in question."
    ),
    "rate_limited": _lt(
        "%(insurer)s limits the rate of calls (HTTP 429): try again after "
        "%(seconds)s seconds."
    ),
    "timeout": _lt(
        "%(insurer)s did not answer within %(seconds)s s (%(method)s %(path)s)."
    ),
    "unreachable": _lt("%(insurer)s could not be reached (%(method)s %(path)s)."),
    "connection_closed": _lt(
        "%(insurer)s closed the connection without answering (%(method)s %(path)s)."
    ),
    "call_failed": _lt("%(insurer)s: the call %(method)s %(path)s failed (%(error)s)."),
    "server_error": _lt(
        "%(insurer)s failed to process %(method)s %(path)s (HTTP %(status)s): "
        "%(detail)s"
    ),
    "rejected": _lt("%(insurer)s refused the call (HTTP %(status)s): %(detail)s"),
    "action_refused": _lt(
        "%(insurer)s refused the change of the cover of buyer %(reference)s: %(detail)s"
    ),
    "unexpected_status": _lt(
        "%(insurer)s answered %(method)s %(path)s with an unexpected HTTP %(status)s."
    ),
    "malformed_json": _lt(
        "%(insurer)s answered %(method)s %(path)s (HTTP %(status)s) with malformed "
        "JSON: its answer could not be read."
    ),
    "html_page": _lt(
        "%(insurer)s answered %(method)s %(path)s (HTTP %(status)s) with an HTML "
        "page (%(title)s) instead of its API's answer."
    ),
    "unexpected_shape": _lt(
        "%(insurer)s: its answer is not shaped as its contract says (%(field)s)."
    ),
    "missing_field": _lt("%(insurer)s: its answer lacks %(field)s."),
    "not_a_list": _lt("%(insurer)s: in its answer, %(field)s is not a list."),
    "bad_amount": _lt("%(insurer)s: %(field)s is not an amount (%(value)s)."),
    "bad_date": _lt("%(insurer)s: %(field)s is not a date (%(value)s)."),
    "unknown_code": _lt("%(insurer)s: unknown %(field)s %(value)s in its answer."),
    "foreign_host": _lt(
        "%(insurer)s pointed to another site (%(host)s); it was not followed."
    ),
    "no_token": _lt("%(insurer)s gave no token when logging in."),
    "no_credit_limit": _lt(
        "%(insurer)s: the cover of %(reference)s has no credit limit."
    ),
    "job_failed": _lt("%(insurer)s did not process request %(reference)s: %(detail)s"),
    "cover_not_listed": _lt(
        "%(insurer)s no longer lists %(reference)s on buyer %(buyer)s."
    ),
    "amount_step": _lt(
        "%(insurer)s grants limits in multiples of %(step)s: ask for %(suggested)s "
        "rather than %(amount)s."
    ),
    "unavailable": _lt(
        "%(insurer)s: %(operation)s is not available through this connection "
        "(%(reason)s). Do it in the insurer's portal."
    ),
    "request_unconfirmed": _lt(
        "%(insurer)s may already have received request %(reference)s (an earlier "
        "attempt got no answer) and it cannot be looked up by our reference. Check "
        "the insurer's portal: record its answer if the request is there, "
        "otherwise send it again."
    ),
    "declaration_unconfirmed": _lt(
        "%(insurer)s may already have received declaration %(reference)s and it "
        "cannot be looked up by our reference. Check the insurer's portal before "
        "declaring it again."
    ),
}
UNKNOWN_ERROR_TEXT = _lt("%(insurer)s: the exchange failed (%(code)s).")
OPERATION_TEXTS = {
    "find_buyer": _lt("finding a buyer"),
    "find_buyer_without_siren": _lt("finding a buyer without a SIREN or VAT number"),
    "find_buyer_without_identifier": _lt(
        "finding a buyer without a SIREN, SIRET or VAT number"
    ),
    "request_limit": _lt("requesting a limit"),
    "request_reduce": _lt("a request to reduce a limit"),
    "request_cancel": _lt("a request to cancel a limit"),
    "request_renew": _lt("a request to renew a limit"),
    "find_request": _lt("looking a request up by our reference"),
    "follow_request": _lt("following a pending request"),
    "pull_decisions": _lt("pulling decision changes"),
    "declare_overdue": _lt("declaring an overdue"),
    "declare_default": _lt("declaring a payment overdue (state of default)"),
    "declare_rescheduling": _lt("declaring a rescheduling"),
    "find_declaration": _lt("looking a declaration up by our reference"),
    "follow_declaration": _lt("following a declaration"),
    "update_declaration": _lt("updating a declaration"),
    "pull_claims": _lt("pulling claims"),
    "follow_claim": _lt("following a claim"),
    "declare_turnover": _lt("declaring the turnover"),
}
REASON_TEXTS = {
    "not_implemented": _lt("not implemented"),
    "not_public": _lt("the insurer's contract for it is not public"),
    "no_lookup": _lt("the public contract has no such lookup"),
    "request_type": _lt("its request type is not in the public documentation"),
    "several_invoices": _lt(
        "a state of default covering several invoices and its updates are not in "
        "the public documentation"
    ),
    "siren_only": _lt("only a search by SIREN or VAT number is in the public contract"),
    "identifier_only": _lt("the insurer finds companies by identifier"),
    "manual": _lt("requests and decisions are entered by hand"),
}


class _Params(dict):
    """Sentence values; a missing one reads as "?" rather than failing."""

    def __missing__(self, key):
        return "?"


DECISIONS_PER_BATCH = 200
# Calls to one insurer in flight at once (threads waiting on the network).
CONCURRENT_CALLS = 8


def can_commit():
    """Commit per record in crons, never in tests (as Odoo core does)."""
    return not (tools.config["test_enable"] or modules.module.current_test)


class CreditInsuranceInsurer(models.Model):
    """One connection to a credit insurer (an API account, or manual entry)."""

    _name = "credit.insurance.insurer"
    _description = "Credit insurer connection"
    _inherit = ["mail.thread"]
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    # One value per module of providers/ (see providers.PROVIDERS).
    provider = fields.Selection(
        [
            ("manual", "Manual (no API)"),
            ("sandbox", "Sandbox insurer (built in)"),
            ("allianz_trade", "Allianz Trade"),
            ("atradius", "Atradius"),
            ("coface", "Coface"),
        ],
        required=True,
        default="manual",
        tracking=True,
        help="How Odoo exchanges with this insurer. 'Manual' means requests and "
        "decisions are entered by hand; the others send requests and pull "
        "decisions through the insurer's API.",
    )
    environment = fields.Selection(
        [("sandbox", "Sandbox"), ("production", "Production")],
        required=True,
        default="sandbox",
        tracking=True,
    )
    api_base_url = fields.Char(string="API base URL", tracking=True)
    # Insurers whose APIs have a base URL each (Allianz Trade): one setting per
    # API, filled with the insurer's defaults for the environment.
    separate_api_urls = fields.Boolean(
        string="One URL per API", compute="_compute_connected"
    )
    login_api_url = fields.Char(
        string="Login API URL",
        compute="_compute_api_urls",
        store=True,
        readonly=False,
        tracking=True,
        help="Where Odoo logs in (Allianz Trade: the IDP API). Filled with the "
        "insurer's address for the environment; change it only if the insurer "
        "says so.",
    )
    search_api_url = fields.Char(
        string="Company search API URL",
        compute="_compute_api_urls",
        store=True,
        readonly=False,
        tracking=True,
        help="Where buyers are matched (Allianz Trade: the Search API).",
    )
    cover_api_url = fields.Char(
        string="Cover API URL",
        compute="_compute_api_urls",
        store=True,
        readonly=False,
        tracking=True,
        help="Where limits are requested and followed (Allianz Trade: the "
        "Risk Info API, covers and jobs).",
    )
    api_timeout = fields.Integer(
        string="API timeout (seconds)",
        default=30,
        help="Longest wait for one answer of the insurer's API.",
    )
    customer_number = fields.Char(
        string="Customer number",
        tracking=True,
        help="Your number at the insurer: Atradius customer ID, Allianz Trade "
        "business unit code, Coface policy (contract) number.",
    )
    # Secrets: readable and writable by system administrators only; sent with sudo().
    api_key = fields.Char(string="API key", groups="base.group_system", copy=False)
    client_id = fields.Char(string="Client ID", groups="base.group_system", copy=False)
    client_secret = fields.Char(groups="base.group_system", copy=False)
    login = fields.Char(groups="base.group_system", copy=False)
    password = fields.Char(groups="base.group_system", copy=False)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    connected = fields.Boolean(
        compute="_compute_connected",
        help="Requests are sent and decisions pulled through the insurer's API.",
    )
    credentials_refused = fields.Boolean(
        string="Credentials refused",
        readonly=True,
        copy=False,
        help="The insurer refused the credentials: nothing is sent until they "
        "are changed or the connection is tested successfully (some insurers "
        "lock the account after a few failed logins).",
    )
    paused_until = fields.Datetime(
        string="Calls paused until",
        readonly=True,
        copy=False,
        help="The insurer asked to slow down (HTTP 429) or locked the account: "
        "no call before then.",
    )
    failed_logins = fields.Integer(
        string="Refused logins in a row",
        readonly=True,
        copy=False,
        help="Some insurers lock the account after a few refused logins "
        "(Coface: five): a refused login is never tried again automatically.",
    )
    locked_until = fields.Datetime(
        string="Account locked until",
        readonly=True,
        copy=False,
        help="The insurer locked the account after refused logins; trying before "
        "this moment would lock it longer.",
    )
    # Exchanges that follow our reading of a contract the insurer does not
    # publish (providers' unconfirmed_operations).
    unconfirmed_exchanges = fields.Text(
        string="Exchanges not confirmed against the insurer",
        compute="_compute_unconfirmed_exchanges",
    )
    exchanges_confirmed = fields.Boolean(
        string="Exchanges confirmed against the insurer",
        readonly=True,
        copy=False,
        tracking=True,
        help="A credit manager checked in the insurer's portal that an exchange "
        "sent through the API arrived as intended.",
    )
    exchanges_confirmed_by = fields.Many2one(
        "res.users", string="Confirmed by", readonly=True, copy=False
    )
    exchanges_confirmed_date = fields.Datetime(
        string="Confirmed on", readonly=True, copy=False
    )
    decisions_synced_until = fields.Datetime(
        string="Decisions pulled up to",
        readonly=True,
        copy=False,
        help="Decisions changed at the insurer after this moment are pulled at "
        "the next synchronisation.",
    )
    last_sync_date = fields.Datetime(
        string="Last synchronisation", readonly=True, copy=False
    )
    sync_error = fields.Text(
        string="Last synchronisation problem", readonly=True, copy=False
    )
    policy_ids = fields.One2many("credit.insurance.policy", "insurer_id")
    policy_count = fields.Integer(compute="_compute_policy_count")

    @api.depends("provider")
    def _compute_connected(self):
        for insurer in self:
            provider = insurer._provider_class()
            insurer.connected = bool(provider and provider.connected)
            insurer.separate_api_urls = bool(provider and provider.api_url_defaults)

    def _provider_class(self):
        self.ensure_one()
        return get_provider_class(self.provider) if self.provider else None

    @api.depends("provider", "environment")
    def _compute_api_urls(self):
        """The insurer's address of each API for the environment."""
        for insurer in self:
            provider = insurer._provider_class()
            defaults = (provider.api_url_defaults if provider else {}).get(
                insurer.environment
            ) or {}
            for api_name, field_name in API_URL_FIELDS.items():
                insurer[field_name] = defaults.get(api_name) or False

    @api.depends("provider", "exchanges_confirmed")
    def _compute_unconfirmed_exchanges(self):
        for insurer in self:
            provider = insurer._provider_class()
            operations = provider.unconfirmed_operations if provider else ()
            insurer.unconfirmed_exchanges = (
                ", ".join(
                    self.env._(OPERATION_TEXTS[operation]) for operation in operations
                )
                if operations and not insurer.exchanges_confirmed
                else False
            )

    def _exchange_unconfirmed(self, operation):
        """Whether ``operation`` (a provider operation code) follows our
        reading of a non-public contract not yet confirmed by a user."""
        self.ensure_one()
        provider = self._provider_class()
        return bool(
            provider
            and operation in provider.unconfirmed_operations
            and not self.exchanges_confirmed
        )

    def action_confirm_exchanges(self):
        """A credit manager checked in the insurer's portal that the exchanges
        sent through the API arrived as intended."""
        if not self.env.user.has_group(
            "credit_insurance.group_credit_insurance_manager"
        ):
            raise UserError(
                self.env._("Only a credit manager can confirm the exchanges.")
            )
        for insurer in self.filtered("unconfirmed_exchanges"):
            operations = insurer.unconfirmed_exchanges
            insurer.write(
                {
                    "exchanges_confirmed": True,
                    "exchanges_confirmed_by": self.env.user.id,
                    "exchanges_confirmed_date": fields.Datetime.now(),
                }
            )
            insurer.message_post(
                body=self.env._(
                    "%(user)s checked in the portal of %(insurer)s that these "
                    "exchanges arrived as intended: %(operations)s.",
                    user=self.env.user.name,
                    insurer=insurer.name,
                    operations=operations,
                )
            )
        return True

    @api.depends("policy_ids")
    def _compute_policy_count(self):
        for insurer in self:
            insurer.policy_count = len(insurer.policy_ids)

    @api.constrains("api_base_url")
    def _check_api_base_url(self):
        for insurer in self.filtered("api_base_url"):
            url = urlsplit(insurer.api_base_url)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValidationError(
                    self.env._(
                        "API base URL of %(insurer)s must be an http(s) address, "
                        "e.g. https://api.example.com (got %(url)s).",
                        insurer=insurer.name,
                        url=insurer.api_base_url,
                    )
                )

    @api.constrains(
        "provider",
        "api_base_url",
        "api_timeout",
        "login_api_url",
        "search_api_url",
        "cover_api_url",
    )
    def _check_connection(self):
        for insurer in self.filtered("connected"):
            if insurer.separate_api_urls:
                for field_name in API_URL_FIELDS.values():
                    url = urlsplit(insurer[field_name] or "")
                    if url.scheme not in ("http", "https") or not url.netloc:
                        raise ValidationError(
                            self.env._(
                                "%(field)s of %(insurer)s must be an http(s) "
                                "address (got %(url)s).",
                                field=insurer._fields[field_name].get_description(
                                    self.env
                                )["string"],
                                insurer=insurer.name,
                                url=insurer[field_name] or "-",
                            )
                        )
            elif not insurer.api_base_url:
                raise ValidationError(
                    self.env._(
                        "%(insurer)s exchanges through an API: give its API base URL.",
                        insurer=insurer.name,
                    )
                )
            if insurer.api_timeout <= 0:
                raise ValidationError(
                    self.env._(
                        "API timeout of %(insurer)s: give a number of seconds.",
                        insurer=insurer.name,
                    )
                )

    def write(self, vals):
        if any(name in vals for name in CREDENTIAL_FIELDS):
            vals = {**vals, "credentials_refused": False, "failed_logins": 0}
        return super().write(vals)

    # ------------------------------------------------------------ connection

    def _get_provider(self, session):
        """The provider talking to this insurer, for one batch of calls.

        Credentials are read here, with sudo, and go nowhere but the provider.
        """
        self.ensure_one()
        insurer = self.sudo()
        config = ProviderConfig(
            base_url=insurer.api_base_url or "",
            api_urls={
                api_name: insurer[field_name]
                for api_name, field_name in API_URL_FIELDS.items()
                if insurer.separate_api_urls and insurer[field_name]
            },
            policies=tuple(
                (policy.name, policy.insurer_extension or "")
                for policy in insurer.with_context(active_test=False).policy_ids
            ),
            label=insurer.name,
            api_key=insurer.api_key or "",
            client_id=insurer.client_id or "",
            client_secret=insurer.client_secret or "",
            login=insurer.login or "",
            password=insurer.password or "",
            customer_number=insurer.customer_number or "",
            timeout=float(insurer.api_timeout or 30),
        )
        return get_provider_class(self.provider)(config, session)

    def _is_reachable_now(self):
        self.ensure_one()
        now = fields.Datetime.now()
        return (
            self.connected
            and self.active
            and not self.credentials_refused
            and not (self.paused_until and self.paused_until > now)
            and not (self.locked_until and self.locked_until > now)
        )

    def _record_call_failure(self, error):
        """An insurer-wide failure: refused credentials, a locked account or
        too many calls.

        :return: True when calls to this insurer must stop for now.
        """
        self.ensure_one()
        if isinstance(error, InsurerAuthError):
            text = self._error_text(error)
            vals = {
                "credentials_refused": True,
                "sync_error": text,
                "failed_logins": self.failed_logins + 1,
            }
            if error.retry_after:  # the insurer locked the account
                vals["locked_until"] = fields.Datetime.now() + timedelta(
                    seconds=error.retry_after
                )
                vals["paused_until"] = vals["locked_until"]
            self.write(vals)
            lockout = self._provider_class().lockout_after
            self.message_post(
                body=self.env._(
                    "Nothing is sent to %(insurer)s until the credentials are "
                    "corrected: %(error)s",
                    insurer=self.name,
                    error=text,
                )
                + (
                    " "
                    + self.env._(
                        "Refused logins in a row: %(count)s (the insurer locks the "
                        "account after %(limit)s).",
                        count=self.failed_logins,
                        limit=lockout,
                    )
                    if lockout
                    else ""
                )
            )
            return True
        if isinstance(error, InsurerTemporaryError) and error.status == 429:
            self.paused_until = fields.Datetime.now() + timedelta(
                seconds=error.retry_after or 60
            )
            self.env.ref("credit_insurance.ir_cron_exchange_limit_requests")._trigger(
                at=self.paused_until
            )
            return True
        return False

    def action_test_connection(self):
        """Log in to the insurer now and say whether it worked."""
        self.ensure_one()
        if not self.connected:
            raise UserError(
                self.env._("%(insurer)s has no API connection.", insurer=self.name)
            )
        if self.locked_until and self.locked_until > fields.Datetime.now():
            # Each login during a lockout makes it longer (Coface).
            raise UserError(
                self.env._(
                    "%(insurer)s locked the account after refused logins: wait "
                    "until %(until)s before testing the connection again, and "
                    "check the credentials first.",
                    insurer=self.name,
                    until=fields.Datetime.context_timestamp(
                        self, self.locked_until
                    ).strftime("%H:%M"),
                )
            )
        with requests.Session() as session:
            try:
                self._get_provider(session).authenticate()
            except InsurerError as error:
                if isinstance(error, InsurerAuthError):
                    self._record_call_failure(error)
                    # Keep what was recorded: raising would roll it back.
                    return self._notification("danger", self._error_text(error))
                raise UserError(
                    self.env._(
                        "Connection to %(insurer)s failed: %(error)s",
                        insurer=self.name,
                        error=self._error_text(error),
                    )
                ) from None
        self.write(
            {
                "credentials_refused": False,
                "paused_until": False,
                "failed_logins": 0,
                "locked_until": False,
            }
        )
        return self._notification(
            "success", self.env._("Connected to %(insurer)s.", insurer=self.name)
        )

    @staticmethod
    def _notification(kind, message):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"type": kind, "message": message},
        }

    def _error_text(self, error):
        """What a user reads of a provider error: the sentence of its code
        (ERROR_TEXTS) in the user's language, or the company's when a scheduled
        job records it (jobs run without a language)."""
        company = self[:1].company_id or self.env.company
        env = self.env
        if not env.lang and company.partner_id.lang:
            env = self.with_context(lang=company.partner_id.lang).env
        if error.code == "odoo" or not isinstance(error, InsurerError):
            return str(error)
        params = _Params(error.params)
        params.setdefault("insurer", self[:1].name or "")
        params["code"] = error.code
        if error.code == "unavailable":
            params["operation"] = env._(
                OPERATION_TEXTS.get(params["operation"], UNKNOWN_ERROR_TEXT)
            )
            params["reason"] = env._(
                REASON_TEXTS.get(params["reason"], REASON_TEXTS["not_public"])
            )
        template = ERROR_TEXTS.get(error.code, UNKNOWN_ERROR_TEXT)
        return env._(template) % params

    def action_exchange_now(self):
        """Send waiting requests and pull decisions without waiting for the
        scheduled run."""
        self.write({"paused_until": False})
        self.env.ref("credit_insurance.ir_cron_exchange_limit_requests")._trigger()
        self.env.ref("credit_insurance.ir_cron_pull_limit_decisions")._trigger()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "message": self.env._(
                    "The exchange with the insurers starts in a few seconds."
                ),
            },
        }

    # ------------------------------------------------------ decision sync

    @api.model
    def _cron_pull_decisions(self, batch_size=DECISIONS_PER_BATCH):
        """Pull decision changes from each connected insurer since its last
        successful synchronisation, and record them as insured limits."""
        insurers = self.search([("provider", "!=", "manual")]).filtered(
            lambda insurer: insurer._is_reachable_now() and insurer._exposes_decisions()
        )
        done = more = 0
        for insurer in insurers:
            try:
                with self.env.cr.savepoint(), requests.Session() as session:
                    provider = insurer._get_provider(session)
                    has_more = insurer.with_company(insurer.company_id)._pull_decisions(
                        provider, batch_size
                    )
            except Exception as error:  # the other insurers go on
                _logger.exception("%s: pulling decisions failed", insurer.name)
                insurer.sync_error = self.env._(
                    "Unexpected error: %(error)s", error=error
                )
                has_more = False
            done += 1
            more += bool(has_more)
            if can_commit():
                self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env["ir.cron"]._notify_progress(done=done, remaining=more)
        if more:
            self.env.ref("credit_insurance.ir_cron_pull_limit_decisions")._trigger()

    def _exposes_decisions(self):
        """Whether the insurer's API gives decision changes (Coface's
        NOTIFICATION contract is not public)."""
        self.ensure_one()
        provider_class = self._provider_class()
        return bool(
            provider_class
            and provider_class.has_decision_feed
            and provider_class.fetch_decisions is not InsurerProvider.fetch_decisions
        )

    def _pull_decisions(self, provider, batch_size=DECISIONS_PER_BATCH):
        """One page of decision changes. Return True when more are waiting."""
        self.ensure_one()
        try:
            batch = provider.fetch_decisions(
                self.decisions_synced_until, limit=batch_size
            )
        except InsurerError as error:
            if not self._record_call_failure(error):
                self.sync_error = self._error_text(error)
            return False
        Limit = self.env["credit.insurance.limit"]
        unmatched = []
        recorded = 0
        for decision in batch.decisions:
            try:
                with self.env.cr.savepoint():
                    limit, created = Limit._record_insurer_decision(self, decision)
            except Exception as error:  # the other decisions go on
                _logger.exception(
                    "%s: decision %s not recorded", self.name, decision.decision_ref
                )
                unmatched.append(f"{decision.decision_ref}: {error}")
                continue
            if not limit:
                unmatched.append(
                    self.env._(
                        "%(ref)s: buyer %(buyer)s is not known in Odoo",
                        ref=decision.decision_ref,
                        buyer=decision.buyer_ref,
                    )
                )
            recorded += created
        self.write(
            {
                "decisions_synced_until": batch.next_since,
                "last_sync_date": fields.Datetime.now(),
                "sync_error": self.env._(
                    "Decisions not recorded:\n%(list)s", list="\n".join(unmatched)
                )
                if unmatched
                else False,
            }
        )
        _logger.info(
            "%s: %s decisions pulled, %s new, %s not recorded",
            self.name,
            len(batch.decisions),
            recorded,
            len(unmatched),
        )
        return batch.has_more

    def action_view_policies(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_policy_action"
        )
        action["domain"] = [("insurer_id", "=", self.id)]
        action["context"] = {"default_insurer_id": self.id}
        return action

    # ------------------------------------------------- buyers at the insurer
    # Shared by everything that names a buyer to the insurer (limit requests,
    # declarations).

    @api.model
    def _buyer_identity(self, partner):
        buyer = partner.commercial_partner_id
        return BuyerIdentity.build(
            name=buyer.name or "",
            vat=buyer.vat or "",
            registry=buyer.company_registry or "",
            country_code=buyer.country_id.code or "",
            street=buyer.street or "",
            zip=buyer.zip or "",
            city=buyer.city or "",
        )

    def _known_buyer_refs(self, partners):
        """``{commercial partner id: buyer reference}`` at this insurer, from
        earlier exchanges (decisions, answered requests, filed declarations),
        in a few queries for any number of buyers."""
        self.ensure_one()
        buyers = partners.commercial_partner_id
        refs = {}
        for model, answered in (
            ("credit.insurance.limit", "insurer_decision_ref"),
            ("credit.insurance.limit.request", "insurer_reference"),
            ("credit.insurance.declaration", "insurer_reference"),
        ):
            missing = buyers.filtered(lambda buyer: buyer.id not in refs)
            if not missing:
                break
            for partner, ref in (
                self.env[model]
                .sudo()
                ._read_group(
                    [
                        ("partner_id", "in", missing.ids),
                        ("insurer_id", "=", self.id),
                        ("insurer_buyer_ref", "!=", False),
                        (answered, "!=", False),
                    ],
                    ["partner_id", "insurer_buyer_ref"],
                )
            ):
                refs.setdefault(partner.id, ref)
        return refs

    def _check_buyer_identifiable(self, partner, identity):
        """Refuse to ask the insurer about a buyer it cannot identify."""
        if identity.vat or identity.siren or identity.duns:
            return
        if identity.invalid:
            raise InsurerRejected(
                self.env._(
                    "%(buyer)s cannot be identified at %(insurer)s: %(numbers)s "
                    "failed its check digits (a typing error?). Correct the VAT "
                    "number or the company registry (SIREN/SIRET).",
                    buyer=partner.commercial_partner_id.display_name,
                    insurer=self.name,
                    numbers=", ".join(identity.invalid),
                )
            )
        raise InsurerRejected(
            self.env._(
                "%(buyer)s has neither a VAT number nor a company registry "
                "(SIREN/SIRET): add one so that %(insurer)s can identify it.",
                buyer=partner.commercial_partner_id.display_name,
                insurer=self.name,
            )
        )

    def _unknown_buyer_error(self, partner, identity):
        return InsurerRejected(
            self.env._(
                "%(insurer)s does not know %(buyer)s (SIREN %(siren)s, VAT "
                "%(vat)s): check its VAT number and company registry.",
                insurer=self.name,
                buyer=partner.commercial_partner_id.display_name,
                siren=identity.siren or "-",
                vat=identity.vat or "-",
            )
        )

    # -------------------------------------------------------- concurrent calls

    @api.model
    def _run_concurrently(self, provider, calls, workers=None):
        """Run ``calls`` (functions of a provider: plain Python, never the ORM)
        on a few threads, so that a batch waits for the network once rather
        than once per call.

        Each thread has its own HTTP session and shares the provider's login.
        :return: one item per call, in order: what it returned, or the
            exception it raised.
        """
        workers = workers or CONCURRENT_CALLS
        local = threading.local()
        sessions = []

        def run(call):
            if not hasattr(local, "provider"):
                session = requests.Session()
                sessions.append(session)  # list.append is atomic
                local.provider = provider.copy_for_thread(session)
            try:
                return call(local.provider)
            except Exception as error:  # noqa: BLE001 - handed back, per call
                return error

        try:
            if len(calls) < 2 or workers < 2:
                return [run(call) for call in calls]
            with ThreadPoolExecutor(
                max_workers=min(workers, len(calls)),
                thread_name_prefix="credit_insurance_calls",
            ) as pool:
                return list(pool.map(run, calls))
        finally:
            for session in sessions:
                session.close()
