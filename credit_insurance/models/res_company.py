from odoo import models
from odoo.exceptions import AccessError

MANAGER_GROUP = "credit_insurance.group_credit_insurance_manager"


class ResCompany(models.Model):
    _inherit = "res.company"

    def _credit_insurance_managers(self):
        """Active internal users of the credit manager group in this company:
        those who get the alerts and to-dos of the credit insurance jobs."""
        self.ensure_one()
        return (
            self.env.ref(MANAGER_GROUP)
            .sudo()
            .users.filtered(
                lambda user: user.active and not user.share and self in user.company_ids
            )
        )

    def _check_credit_insurance_manager(self, message):
        """Refuse ``message`` (AccessError) unless the user is a credit
        manager; code running as superuser (the jobs) passes."""
        if not self.env.su and not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(message)
