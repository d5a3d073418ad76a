from odoo.addons.credit_insurance.tests.common import CreditInsuranceCommon


class ExportCommon(CreditInsuranceCommon):
    """The insured company is French; besides its global policy it holds an
    export policy (Bpifrance Assurance Export) covering buyers abroad with a
    discretionary limit of 4,000 at 80 %, commercial risk at 95 % on named
    buyers and political risk at 90 %."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fr = cls.env.ref("base.fr")
        cls.us = cls.env.ref("base.us")
        cls.ma = cls.env.ref("base.ma")
        cls.company.country_id = cls.fr
        cls.category = {
            code: cls.env.ref(f"credit_insurance_bpi_export.oecd_category_{code}")
            for code in range(8)
        }
        cls.us.oecd_risk_category_id = cls.category[0]
        cls.ma.oecd_risk_category_id = cls.category[3]
        cls.buyer.country_id = cls.fr
        cls.bpi = cls.env["credit.insurance.insurer"].create(
            {"name": "Bpifrance Assurance Export", "company_id": cls.company.id}
        )
        cls.export_policy = cls.env["credit.insurance.policy"].create(
            {
                "name": "EXP-1",
                "insurer_id": cls.bpi.id,
                "policy_type": "export",
                "company_id": cls.company.id,
                "currency_id": cls.currency.id,
                "date_start": "2020-01-01",
                "coverage_pct": 95.0,
                "political_coverage_pct": 90.0,
                "discretionary_limit": 4000.0,
                "discretionary_coverage_pct": 80.0,
                "max_credit_days": 180,
                "declaration_days": 30,
                # As the core's global policy: tests of cover figures confirm
                # orders above the limit; those of the order check block.
                "enforcement_mode": "warn",
            }
        )
        cls.us_buyer = cls.make_buyer("Boston Fabrics Inc.", cls.us)
        cls.us_buyer_2 = cls.make_buyer("Chicago Linen LLC", cls.us)
        cls.ma_buyer = cls.make_buyer("Textiles de Casablanca", cls.ma)

    @classmethod
    def make_buyer(cls, name, country):
        return cls.env["res.partner"].create(
            {
                "name": name,
                "is_company": True,
                "customer_rank": 1,
                "country_id": country.id,
            }
        )

    @classmethod
    def make_export_limit(cls, buyer, amount, **values):
        return cls.env["credit.insurance.limit"].create(
            {
                "partner_id": buyer.id,
                "policy_id": cls.export_policy.id,
                "requested_amount": amount,
                "granted_amount": amount,
                "date_effective": "2020-01-01",
                **values,
            }
        )

    @classmethod
    def set_cap(cls, country, amount):
        return cls.env["credit.insurance.country.cap"].create(
            {
                "policy_id": cls.export_policy.id,
                "country_id": country.id,
                "cap_amount": amount,
            }
        )

    @classmethod
    def political_event(cls, country, date_start="2020-01-01", **values):
        return cls.env["credit.insurance.political.event"].create(
            {
                "country_id": country.id,
                "event_type": "moratorium",
                "date_start": date_start,
                **values,
            }
        )
