import logging
import uuid
from datetime import timedelta

import requests

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from ..providers import (
    InsurerAuthError,
    InsurerError,
    LimitRequest,
)
from .credit_insurance_insurer import can_commit

_logger = logging.getLogger(__name__)

# UN/EDIFACT 4505 request purposes, as insurers know them.
REQUEST_TYPES = [
    ("new", "New limit"),
    ("increase", "Increase"),
    ("reduce", "Reduction"),
    ("cancel", "Cancellation"),
    ("renew", "Renewal"),
]
REQUESTS_PER_BATCH = 50
# Minutes between two checks of a request waiting at the insurer.
CHECK_DELAYS = {"pending": 2, "referred": 15}


class CreditInsuranceLimitRequest(models.Model):
    """A request to the insurer for a limit on a buyer, followed to its decision.

    With a manual insurer the credit manager files it in the insurer's portal
    and records the answer; connectors send and follow it automatically.
    """

    _name = "credit.insurance.limit.request"
    _description = "Credit limit request"
    _inherit = [
        "mail.thread",
        "mail.activity.mixin",
        "credit.insurance.exchange.mixin",
    ]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Reference", required=True, readonly=True, copy=False, default="/"
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Buyer",
        required=True,
        index=True,
        check_company=True,
        tracking=True,
        domain="[('is_company', '=', True)]",
    )
    policy_id = fields.Many2one(
        "credit.insurance.policy",
        required=True,
        check_company=True,
        tracking=True,
        compute="_compute_policy_id",
        store=True,
        readonly=False,
        precompute=True,
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    insurer_id = fields.Many2one(related="policy_id.insurer_id", store=True)
    request_type = fields.Selection(
        REQUEST_TYPES, string="Type", required=True, default="new", tracking=True
    )
    requested_amount = fields.Monetary(tracking=True)
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        compute="_compute_currency_id",
        store=True,
        readonly=False,
        precompute=True,
    )
    reason = fields.Text(help="Why the limit is needed, for the insurer's underwriter.")
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("sent", "Sent"),
            ("pending", "Pending"),
            ("referred", "Referred to an underwriter"),
            ("decided", "Decided"),
            ("error", "Error"),
            ("cancelled", "Cancelled"),
        ],
        default="draft",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
    )
    customer_reference = fields.Char(
        readonly=True,
        copy=False,
        index=True,
        help="Our reference sent to the insurer with the request; used to find "
        "the request at the insurer before any re-send, so it is never filed twice.",
    )
    insurer_reference = fields.Char(
        readonly=True,
        copy=False,
        tracking=True,
        help="The insurer's reference of the request (job, cover or case number).",
    )
    date_sent = fields.Datetime(string="Sent on", readonly=True, copy=False)
    date_decided = fields.Datetime(string="Decided on", readonly=True, copy=False)
    decision_id = fields.Many2one("credit.insurance.limit", readonly=True, copy=False)
    insurer_connected = fields.Boolean(related="insurer_id.connected")
    exchange_unconfirmed = fields.Boolean(
        string="Not confirmed against the insurer",
        compute="_compute_exchange_unconfirmed",
        help="The insurer does not publish this exchange's contract: it follows "
        "our reading until a credit manager confirms it on the insurer's form.",
    )
    insurer_buyer_ref = fields.Char(
        help="The insurer's identifier of the buyer (companyId, buyerId, "
        "EasyNumber), found from its VAT number and company registry.",
    )
    delivery_uncertain = fields.Boolean(
        help="A sending may have reached the insurer without its answer "
        "reaching Odoo: the request is looked up at the insurer by its customer "
        "reference before anything is sent again.",
    )
    next_check_date = fields.Datetime(
        help="When Odoo next asks the insurer where this request stands.",
    )
    sale_order_id = fields.Many2one(
        "sale.order",
        string="Blocked order",
        readonly=True,
        copy=False,
        check_company=True,
        help="The order whose confirmation needed this limit.",
    )

    _sql_constraints = [
        (
            "customer_reference_uniq",
            "unique(customer_reference)",
            "Each request carries its own customer reference.",
        ),
    ]

    @api.depends("partner_id", "company_id")
    def _compute_policy_id(self):
        for request in self:
            if request.partner_id and not request.policy_id:
                cover = (
                    self.env["credit.insurance.cover"]
                    .with_company(request.company_id)
                    ._get_buyer_covers(request.partner_id)
                    .get(request.partner_id._origin.commercial_partner_id.id)
                )
                request.policy_id = cover.policy if cover else False

    @api.depends("policy_id")
    def _compute_currency_id(self):
        for request in self:
            if not request.currency_id:
                request.currency_id = (
                    request.policy_id.currency_id or request.company_id.currency_id
                )

    @api.constrains("requested_amount", "request_type", "partner_id")
    def _check_request(self):
        for request in self:
            if request.requested_amount < 0:
                raise ValidationError(
                    self.env._(
                        "Requested amount: a limit request for %(buyer)s cannot be "
                        "negative.",
                        buyer=request.partner_id.display_name,
                    )
                )
            if request.request_type != "cancel" and not request.requested_amount:
                raise ValidationError(
                    self.env._(
                        "Requested amount: say how much cover to ask for on %(buyer)s.",
                        buyer=request.partner_id.display_name,
                    )
                )
            if not request.partner_id.is_company:
                raise ValidationError(
                    self.env._(
                        "Buyer: limits are requested on companies, and %(buyer)s "
                        "is a contact. Choose the company it belongs to.",
                        buyer=request.partner_id.display_name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = (
                    self.env["ir.sequence"]
                    .sudo()
                    .next_by_code("credit.insurance.limit.request")
                )
            # Unique and known before the first send: the idempotency key.
            vals["customer_reference"] = f"ODOO-LR-{uuid.uuid4().hex[:16].upper()}"
        return super().create(vals_list)

    # ------------------------------------------------------------- workflow

    @api.depends("insurer_id.exchanges_confirmed", "insurer_id.provider")
    def _compute_exchange_unconfirmed(self):
        # Read as the related fields are: salespeople do not read insurers.
        for request in self:
            request.exchange_unconfirmed = bool(
                request.insurer_id
            ) and request.insurer_id.sudo()._exchange_unconfirmed("request_limit")

    def action_send(self):
        """File the requests: manual insurers are filed by hand in the portal."""
        for request in self:
            if request.state not in ("draft", "error"):
                raise UserError(
                    self.env._(
                        "Request %(name)s has already been sent.", name=request.name
                    )
                )
        self._send()
        return True

    def _send(self):
        """Connected insurers: queue for the exchange job, which runs at once.

        The manual insurer only records the filing.
        """
        connected = self.filtered("insurer_connected")
        for request in connected:
            # Already at the insurer: follow it there rather than send it again.
            request.write(
                {
                    "state": "pending" if request.insurer_reference else "draft",
                    "last_error": False,
                    "retry_count": 0,
                    "next_retry_date": False,
                    "next_check_date": False,
                }
            )
            request.message_post(
                body=self.env._(
                    "Queued for %(insurer)s: the exchange with the insurer runs "
                    "in a few seconds.",
                    insurer=request.insurer_id.name,
                )
            )
        if connected:
            self.env.ref("credit_insurance.ir_cron_exchange_limit_requests")._trigger()
        for request in self - connected:
            request.write({"state": "sent", "date_sent": fields.Datetime.now()})
            request.message_post(
                body=self.env._(
                    "Request filed by hand in the insurer's portal; record the "
                    "insurer's answer with 'Record decision'."
                )
            )

    def action_record_decision(self):
        """Open a new decision prefilled from the request (manual insurers)."""
        self.ensure_one()
        if self.state in ("decided", "cancelled"):
            raise UserError(
                self.env._("Request %(name)s is already closed.", name=self.name)
            )
        return {
            "type": "ir.actions.act_window",
            "res_model": "credit.insurance.limit",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_partner_id": self.partner_id.id,
                "default_policy_id": self.policy_id.id,
                "default_requested_amount": self.requested_amount,
                "default_granted_amount": self.requested_amount,
                "default_currency_id": self.currency_id.id,
                "default_request_id": self.id,
            },
        }

    def _mark_decided(self, decision):
        """Close the request with the decision the insurer gave."""
        self.write(
            {
                "state": "decided",
                "decision_id": decision.id,
                "date_decided": fields.Datetime.now(),
                "last_error": False,
                "next_retry_date": False,
                "next_check_date": False,
                "delivery_uncertain": False,
            }
        )
        for request in self:
            request.message_post(
                body=self.env._(
                    "Decision recorded: %(decision)s.", decision=decision.display_name
                )
            )

    def action_cancel(self):
        if any(request.state == "decided" for request in self):
            raise UserError(self.env._("A decided request cannot be cancelled."))
        self.write({"state": "cancelled"})
        return True

    def action_reset_to_draft(self):
        for request in self.filtered(lambda r: r.state in ("cancelled", "error")):
            request.write(
                {
                    "state": "draft",
                    # It reached the insurer once: look it up before sending.
                    "delivery_uncertain": request.delivery_uncertain
                    or bool(request.insurer_reference),
                    "next_retry_date": False,
                }
            )
        return True

    def action_confirm_not_received(self):
        """The credit manager checked the insurer's portal: the request is not
        there, so it may be sent again."""
        for request in self.filtered(lambda r: r.state == "error"):
            request.write(
                {
                    "delivery_uncertain": False,
                    "insurer_reference": False,
                    "last_error": False,
                }
            )
            request.message_post(
                body=self.env._(
                    "Checked in the portal of %(insurer)s: the request is not "
                    "there. It is sent again.",
                    insurer=request.insurer_id.name,
                )
            )
        return self.action_send()

    # ------------------------------------------------- exchange with insurers

    @api.model
    def _exchange_due_domain(self):
        """Requests of connected insurers that have something to do now."""
        now = fields.Datetime.now()
        return [
            ("insurer_id.provider", "!=", "manual"),
            ("insurer_id.active", "=", True),
            ("insurer_id.credentials_refused", "=", False),
            "|",
            ("insurer_id.paused_until", "=", False),
            ("insurer_id.paused_until", "<=", now),
            "|",
            "|",
            "|",
            ("state", "=", "draft"),
            "&",
            ("state", "=", "sent"),
            ("delivery_uncertain", "=", True),
            "&",
            ("state", "in", ("pending", "referred")),
            "|",
            ("next_check_date", "=", False),
            ("next_check_date", "<=", now),
            "&",
            ("state", "=", "error"),
            ("next_retry_date", "<=", now),
        ]

    @api.model
    def _cron_exchange_with_insurers(self, batch_size=REQUESTS_PER_BATCH):
        """Send drafts, follow pending and referred requests, retry errors.

        A bounded batch, one HTTP session per insurer, one commit per request:
        a failing request keeps its error and is retried later, the others go
        on. Re-triggers itself while requests are still due.
        """
        todo = self.search(self._exchange_due_domain(), order="id", limit=batch_size)
        done = 0
        for insurer, batch in todo.grouped("insurer_id").items():
            with requests.Session() as session:
                provider = insurer._get_provider(session)
                for request in batch:
                    outcome = request.with_company(
                        request.company_id
                    )._exchange_with_insurer(provider)
                    done += outcome != "skipped"
                    if outcome == "stop":
                        break
        remaining = self.search_count(self._exchange_due_domain())
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        if remaining and done:
            self.env.ref("credit_insurance.ir_cron_exchange_limit_requests")._trigger()
        return done

    def _exchange_with_insurer(self, provider):
        """Send or follow this request.

        :return: ``"done"``, ``"skipped"`` (busy elsewhere, or nothing to do
            any more) or ``"stop"`` (the insurer must not be called again now).
        """
        self.ensure_one()
        if not self._lock_for_exchange():
            return "skipped"
        self.invalidate_recordset()
        if not self.filtered_domain(self._exchange_due_domain()):
            return "skipped"
        outcome = "done"
        try:
            if self.insurer_reference and self.state in (
                "pending",
                "referred",
                "error",
            ):
                self._poll_insurer(provider)
            elif not self._send_to_insurer(provider):
                return "skipped"
        except InsurerAuthError as error:
            # The insurer's credentials, not this request: it waits for them.
            self.insurer_id._record_call_failure(error)
            outcome = "stop"
        except InsurerError as error:
            if self.insurer_id._record_call_failure(error):
                outcome = "stop"
            self._record_failure(error)
        except Exception as error:  # one request never stops the batch
            _logger.exception("Limit request %s: exchange failed", self.name)
            self._record_failure(
                InsurerError(
                    self.env._("Unexpected error: %(error)s", error=error),
                    provider=self.insurer_id.name,
                ),
                retryable=True,
            )
        self._commit_exchange()
        return outcome

    def _lock_for_exchange(self):
        self.env.cr.execute(
            SQL(
                "SELECT id FROM credit_insurance_limit_request WHERE id = %(id)s "
                "FOR NO KEY UPDATE SKIP LOCKED",
                id=self.id,
            )
        )
        return bool(self.env.cr.fetchone())

    def _commit_exchange(self):
        """Commit what happened to this request (not in tests); keep it locked."""
        if not can_commit() or self.env.context.get("credit_insurance_no_commit"):
            return True
        self.env.cr.commit()  # pylint: disable=invalid-commit
        return self._lock_for_exchange()

    def _send_to_insurer(self, provider):
        """Send the request exactly once.

        The sending is recorded (and committed) *before* the call, so that a
        call whose answer is lost — timeout, dropped connection, a crash before
        the answer is saved — leaves the request marked: the next attempt then
        looks it up at the insurer by its customer reference and only sends it
        if the insurer does not have it.

        :return: False when another process took the request meanwhile.
        """
        provider.ensure_authenticated()  # a refused login leaves it untouched
        may_have_been_sent = self.delivery_uncertain
        buyer_ref = (
            self.insurer_buyer_ref
            or self._known_buyer_ref()
            or self._find_buyer_at_insurer(provider)
        )
        self.write(
            {
                "state": "sent",
                "date_sent": fields.Datetime.now(),
                "delivery_uncertain": True,
                "insurer_buyer_ref": buyer_ref,
            }
        )
        if not self._commit_exchange():
            return False
        try:
            with self.env.cr.savepoint():
                answer = provider.submit_limit_request(
                    self._provider_request(buyer_ref),
                    may_have_been_sent=may_have_been_sent,
                )
                self._apply_limit_answer(answer)
        except InsurerError as error:
            if not (may_have_been_sent or error.may_have_been_received):
                self.delivery_uncertain = False  # certainly not at the insurer
            raise
        return True

    def _poll_insurer(self, provider):
        with self.env.cr.savepoint():
            answer = provider.poll_limit_request(
                self._provider_request(self.insurer_buyer_ref),
                self.insurer_reference,
            )
            if answer.status == self.state:
                self.write(
                    {
                        "next_check_date": fields.Datetime.now()
                        + timedelta(minutes=CHECK_DELAYS[answer.status]),
                        "last_error": False,
                        "retry_count": 0,
                    }
                )
            else:
                self._apply_limit_answer(answer)

    def _apply_limit_answer(self, answer):
        """Record where the request stands at the insurer (providers.LimitAnswer)."""
        self.ensure_one()
        if answer.reconciled:
            self.message_post(
                body=self.env._(
                    "Found at %(insurer)s under %(reference)s: an earlier sending "
                    "reached the insurer although its answer never reached Odoo. "
                    "It was not sent again.",
                    insurer=self.insurer_id.name,
                    reference=answer.insurer_reference,
                )
            )
        vals = {
            "insurer_reference": answer.insurer_reference,
            "delivery_uncertain": False,
            "last_error": False,
            "retry_count": 0,
            "next_retry_date": False,
        }
        if answer.status == "decided":
            self.write({**vals, "next_check_date": False})
            self.env["credit.insurance.limit"]._record_insurer_decision(
                self.insurer_id, answer.decision, request=self
            )
            return
        self.write(
            {
                **vals,
                "state": answer.status,
                "next_check_date": fields.Datetime.now()
                + timedelta(minutes=CHECK_DELAYS[answer.status]),
            }
        )
        self.message_post(
            body=self.env._(
                "Referred by %(insurer)s to an underwriter (reference "
                "%(reference)s); its answer is checked regularly.",
                insurer=self.insurer_id.name,
                reference=answer.insurer_reference,
            )
            if answer.status == "referred"
            else self.env._(
                "Awaiting the decision of %(insurer)s (reference %(reference)s).",
                insurer=self.insurer_id.name,
                reference=answer.insurer_reference,
            )
        )

    def _record_failure(self, error, retryable=None):
        """Keep the error on the request and schedule a retry with backoff."""
        self.ensure_one()
        retryable = error.retryable if retryable is None else retryable
        now = fields.Datetime.now()
        delay = self._retry_delay(error)
        vals = {
            "last_error": self.insurer_id._error_text(error),
            "retry_count": self.retry_count + 1,
        }
        if retryable and self.state in ("pending", "referred"):
            vals["next_check_date"] = now + delay  # still at the insurer
        else:
            vals["state"] = "error"
            vals["next_retry_date"] = now + delay if retryable else False
        self.write(vals)
        if not retryable:
            self.message_post(body=self._not_retried_message(error))

    def _known_buyer_ref(self):
        """The insurer's reference of the buyer, from an earlier exchange."""
        buyer = self.partner_id.commercial_partner_id
        return self.insurer_id._known_buyer_refs(buyer).get(buyer.id, "")

    def _find_buyer_at_insurer(self, provider):
        identity = self._buyer_identity()
        self.insurer_id._check_buyer_identifiable(self.partner_id, identity)
        match = provider.find_buyer(identity)
        if not match:
            raise self.insurer_id._unknown_buyer_error(self.partner_id, identity)
        return match.buyer_ref

    def _buyer_identity(self):
        return self.env["credit.insurance.insurer"]._buyer_identity(self.partner_id)

    def _provider_request(self, buyer_ref):
        return LimitRequest(
            customer_reference=self.customer_reference,
            request_type=self.request_type,
            amount=self.requested_amount,
            currency=self.currency_id.name,
            buyer_ref=buyer_ref or "",
            buyer=self._buyer_identity(),
            policy_number=self.policy_id.name,
            policy_extension=self.policy_id.insurer_extension or "",
            cover_kind=self._cover_kind(),
            reason=self.reason or "",
            urgent=bool(self.sale_order_id),
            created_at=self.create_date,
        )

    def _cover_kind(self):
        """A new request within the policy's discretionary limit asks the
        insurer for a check of the buyer (Atradius credit-check, Allianz Trade
        grade cover), not for a named limit."""
        discretionary = self.policy_id.discretionary_limit
        if (
            self.request_type == "new"
            and discretionary
            and self.currency_id == self.policy_id.currency_id
            and self.requested_amount <= discretionary
        ):
            return "check"
        return "limit"

    @api.model
    def _answered_by(self, insurer, decision):
        """The open request a decision pulled from ``insurer`` answers."""
        if not (decision.customer_reference or decision.request_ref):
            return self.browse()
        domain = (
            [("customer_reference", "=", decision.customer_reference)]
            if decision.customer_reference
            else [("insurer_reference", "=", decision.request_ref)]
        )
        return self.sudo().search(
            [
                ("insurer_id", "=", insurer.id),
                ("state", "not in", ("decided", "cancelled")),
                *domain,
            ],
            limit=1,
        )

    @api.model
    def _demo_send_when_sandbox_runs(self, request_ids):
        """Demo data: send these requests now if the sandbox insurer answers
        (``make demo`` starts it first); otherwise leave them to the cron."""
        for request in self.browse(request_ids):
            try:
                requests.get(
                    f"{request.insurer_id.api_base_url}/health", timeout=2
                ).raise_for_status()
            except requests.RequestException:
                _logger.info(
                    "Sandbox insurer not running: %s stays a draft", request.name
                )
                continue
            with requests.Session() as session:
                # Inside a module installation: never commit halfway.
                request.with_context(
                    credit_insurance_no_commit=True
                )._exchange_with_insurer(request.insurer_id._get_provider(session))
