import { registry } from "@web/core/registry";

const tours = registry.category("web_tour.tours");

// A salesperson asks the insurer for a limit from the buyer's form.
tours.add("credit_insurance_request_limit", {
    steps: () => [
        {
            trigger: ".o_notebook .nav-link:contains('Credit insurance')",
            run: "click",
        },
        {
            trigger: "button[name='action_request_credit_insurance_limit']",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name='requested_amount'] input",
            run: "edit 20000",
        },
        {
            trigger: ".modal .o_form_button_save",
            run: "click",
        },
        {
            trigger: "body:not(:has(.modal))",
        },
    ],
});

// The same salesperson cannot confirm an order above the insured limit: the
// dialog gives the figures and offers a limit increase, never an override.
tours.add("credit_insurance_order_refused", {
    steps: () => [
        {
            trigger: ".o_form_view button[name='action_confirm']",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name='shortfall_amount']",
        },
        {
            trigger: ".modal:not(:has(button[name='action_confirm_anyway']))",
        },
        {
            trigger: ".modal button[name='action_request_limit_increase']",
            run: "click",
        },
        {
            trigger: ".o_form_view .o_field_widget[name='sale_order_id']",
        },
    ],
});

// A credit manager confirms it anyway, with a reason.
tours.add("credit_insurance_order_override", {
    steps: () => [
        {
            trigger: ".o_form_view button[name='action_confirm']",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name='reason'] textarea",
            run: "edit Client historique, paiement garanti par traite avalisée",
        },
        {
            trigger: ".modal button[name='action_confirm_anyway']",
            run: "click",
        },
        {
            trigger: ".o_statusbar_status .o_arrow_button_current:contains('Sales Order')",
        },
    ],
});
