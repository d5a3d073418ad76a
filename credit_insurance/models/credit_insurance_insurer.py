import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlsplit

import requests

from odoo import api, fields, models, modules, tools
from odoo.exceptions import UserError, ValidationError

from ..providers import (
    BuyerIdentity,
    InsurerAuthError,
    InsurerError,
    InsurerRejected,
    InsurerTemporaryError,
    ProviderConfig,
    get_provider_class,
)

_logger = logging.getLogger(__name__)

# Changing any of these gives refused credentials another chance.
CREDENTIAL_FIELDS = ("api_key", "client_id", "client_secret", "login", "password")
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
        help="The insurer asked to slow down (HTTP 429): no call before then.",
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
            insurer.connected = bool(
                insurer.provider and get_provider_class(insurer.provider).connected
            )

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

    @api.constrains("provider", "api_base_url", "api_timeout")
    def _check_connection(self):
        for insurer in self.filtered("connected"):
            if not insurer.api_base_url:
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
            vals = {**vals, "credentials_refused": False}
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
        )

    def _record_call_failure(self, error):
        """An insurer-wide failure: refused credentials or too many calls.

        :return: True when calls to this insurer must stop for now.
        """
        self.ensure_one()
        if isinstance(error, InsurerAuthError):
            self.write({"credentials_refused": True, "sync_error": error.message})
            self.message_post(
                body=self.env._(
                    "The insurer refused the credentials; nothing is sent until "
                    "they are corrected: %(error)s",
                    error=error.message,
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
        with requests.Session() as session:
            try:
                self._get_provider(session).authenticate()
            except InsurerError as error:
                raise UserError(
                    self.env._(
                        "Connection to %(insurer)s failed: %(error)s",
                        insurer=self.name,
                        error=error.message,
                    )
                ) from None
        self.write({"credentials_refused": False, "paused_until": False})
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("Connected to %(insurer)s.", insurer=self.name),
            },
        }

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
            lambda insurer: insurer._is_reachable_now()
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

    def _pull_decisions(self, provider, batch_size=DECISIONS_PER_BATCH):
        """One page of decision changes. Return True when more are waiting."""
        self.ensure_one()
        try:
            batch = provider.fetch_decisions(
                self.decisions_synced_until, limit=batch_size
            )
        except InsurerError as error:
            if not self._record_call_failure(error):
                self.sync_error = error.message
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
        if not (identity.vat or identity.siren or identity.duns):
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
