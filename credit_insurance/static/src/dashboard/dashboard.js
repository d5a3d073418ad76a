import { Component, onWillStart, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { formatMonetary } from "@web/views/fields/formatters";

/** The credit manager's overview: each figure opens the records behind it. */
export class CreditInsuranceDashboard extends Component {
    static template = "credit_insurance.Dashboard";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ data: null });
        onWillStart(() => this.load());
    }

    async load() {
        this.state.data = await this.orm.call(
            "credit.insurance.dashboard",
            "get_dashboard_data",
            []
        );
    }

    money(value) {
        return formatMonetary(value, {
            currencyId: this.state.data.currency_id,
            digits: [16, 0],
        });
    }

    barWidth(value) {
        const max = Math.max(...this.state.data.by_country.map((r) => Math.max(r.limit, r.exposure)), 1);
        return `width: ${Math.round((100 * value) / max)}%`;
    }

    async open(section, recordId = null) {
        const action = await this.orm.call("credit.insurance.dashboard", "open_section", [
            section,
            recordId,
        ]);
        this.action.doAction(action);
    }
}

registry.category("actions").add("credit_insurance.dashboard", CreditInsuranceDashboard);
