import { registry } from "@web/core/registry";
import { RPCError } from "@web/core/network/rpc";
import { UncaughtPromiseError } from "@web/core/errors/error_service";

/**
 * An order refused at confirmation above its buyer's insured limit: instead of
 * the error message, open the order's limit dialog (the figures, a limit
 * increase to request, a credit manager's override). The server names the
 * order in the error's context (sale_order.py, _credit_insurance_refusal); any
 * other caller gets the plain error.
 */
function creditInsuranceLimitDialog(env, error, originalError) {
    const orderId =
        originalError instanceof RPCError &&
        originalError.data?.context?.credit_insurance_limit_order_id;
    if (!(error instanceof UncaughtPromiseError) || !orderId) {
        return false;
    }
    error.unhandledRejectionEvent.preventDefault();
    env.services.orm
        .call("sale.order", "action_credit_insurance_limit_dialog", [[orderId]])
        .then((action) =>
            env.services.action.doAction(action, {
                // The order may have been confirmed from the dialog: show it
                // again, unless the dialog led elsewhere (a limit request).
                onClose: (info) =>
                    info?.noReload || env.services.action.doAction("soft_reload"),
            })
        );
    return true;
}

registry
    .category("error_handlers")
    .add("credit_insurance_limit_dialog", creditInsuranceLimitDialog, { sequence: 90 });
