import { registry } from "@web/core/registry";

// The dashboard renders its figures and each one opens the records behind it.
registry.category("web_tour.tours").add("credit_insurance_dashboard", {
    steps: () => [
        {
            trigger: ".o_credit_insurance_dashboard .o_ci_uninsured:contains('Dashboard Over Limit SA')",
        },
        {
            trigger: ".o_credit_insurance_dashboard .o_ci_tile[name='over_limit']",
            run: "click",
        },
        {
            trigger: ".o_list_view .o_data_row:contains('Dashboard Over Limit SA')",
        },
        {
            trigger: ".o_list_view:not(:has(.o_data_row:contains('Dashboard Within Limit SA')))",
        },
    ],
});
