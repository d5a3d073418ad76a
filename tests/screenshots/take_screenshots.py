#!/usr/bin/env python3
"""Screenshots of the demo for README.rst, in headless Chromium.

    python3 tests/screenshots/take_screenshots.py             # the demo database
    python3 tests/screenshots/take_screenshots.py -d mydb --lang en_US

Serves the database (made by ``make demo``) with Odoo on a spare port, logs in
as admin, opens each page in headless Chromium driven over the DevTools
protocol (websocket-client, a test requirement), waits for what the page must
show, and saves PNG files in ``credit_insurance/static/description/``.
"""

import argparse
import base64
import contextlib
import itertools
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import requests
import websocket

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "credit_insurance" / "static" / "description"

# (file name, path in the web client, CSS selector that must be shown, script
# run once it is shown — e.g. a click — then the selector of the final state)
SHOTS = [
    (
        "dashboard.png",
        "/odoo/action-credit_insurance.credit_insurance_dashboard_action",
        ".o_credit_insurance_dashboard .o_ci_tile",
        None,
        None,
    ),
    (
        "buyers.png",
        "/odoo/action-credit_insurance.res_partner_action_credit_insurance",
        ".o_list_view .o_data_row",
        None,
        None,
    ),
    (
        "order_refused.png",
        "/odoo/sales/{order}",
        ".o_form_view button[name='action_confirm']",
        "document.querySelector(\"button[name='action_confirm']\").click()",
        ".modal .o_field_widget[name='shortfall_amount']",
    ),
]


class Page:
    """The smallest DevTools client that can navigate, evaluate and capture."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=60)
        self.ids = itertools.count(1)

    def call(self, method, **params):
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )
        return result.get("result", {}).get("value")

    def wait_for(self, selector, timeout=60):
        deadline = time.time() + timeout
        check = f"!!document.querySelector({json.dumps(selector)})"
        while time.time() < deadline:
            if self.evaluate(check):
                return
            time.sleep(0.25)
        raise TimeoutError(f"{selector} did not show within {timeout} s")


def wait_http(url, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--database", default="credit_insurance_demo")
    parser.add_argument("--port", type=int, default=8079)
    parser.add_argument("--lang", default="fr_FR")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("google-chrome")
    if not chromium:
        sys.exit("error: Chromium is needed (apt-get install chromium).")
    base = f"http://127.0.0.1:{args.port}"
    odoo = subprocess.Popen(
        [sys.executable, "-m", "odoo", "-d", args.database]
        + [f"--addons-path={ROOT}", f"--http-port={args.port}", "--log-level=warn"]
        + ["--db-filter", f"^{args.database}$", "--max-cron-threads=0"]
    )
    profile = tempfile.mkdtemp(prefix="screenshots-")
    browser = None
    session = requests.Session()
    try:
        wait_http(f"{base}/web/login")
        login = session.post(
            f"{base}/web/session/authenticate",
            json={
                "params": {"db": args.database, "login": "admin", "password": "admin"}
            },
            timeout=30,
        ).json()
        if "error" in login:
            sys.exit(
                f"error: cannot log in as admin: {login['error']['data']['message']}"
            )
        uid = login["result"]["uid"]
        former_lang = login["result"]["user_context"]["lang"]
        rpc(session, base, "res.users", "write", [[uid], {"lang": args.lang}])
        browser = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu"]
            + ["--no-first-run", "--disable-background-networking", "--disable-sync"]
            + ["--disable-component-update", "--remote-debugging-port=9339"]
            + [f"--user-data-dir={profile}", "--window-size=1440,900", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http("http://127.0.0.1:9339/json/version")
        target = next(
            t
            for t in requests.get("http://127.0.0.1:9339/json", timeout=5).json()
            if t["type"] == "page"
        )
        page = Page(target["webSocketDebuggerUrl"])
        page.call("Network.enable")
        page.call(
            "Network.setCookie",
            name="session_id",
            value=session.cookies["session_id"],
            domain="127.0.0.1",
            path="/",
        )
        page.call(
            "Emulation.setDeviceMetricsOverride",
            width=1440,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        order = over_limit_quotation(session, base)
        for name, path, ready, script, final in SHOTS:
            page.call("Page.navigate", url=base + path.format(order=order))
            page.wait_for(ready)
            if script:
                page.evaluate(script)
                page.wait_for(final)
            time.sleep(1.5)  # let transitions and fonts settle
            shot = page.call("Page.captureScreenshot", format="png")
            (OUTPUT / name).write_bytes(base64.b64decode(shot["data"]))
            print(f"saved {OUTPUT / name}")
        rpc(session, base, "sale.order", "unlink", [[order]])
        rpc(session, base, "res.users", "write", [[uid], {"lang": former_lang}])
    finally:
        if browser:
            browser.terminate()
        odoo.terminate()
        odoo.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def over_limit_quotation(session, base):
    """A quotation that takes the demo buyer over limit further over it."""
    buyer = rpc(
        session, base, "res.partner", "search", [[("name", "=", "Maison Berthier SA")]]
    )
    product = rpc(
        session, base, "product.product", "search", [[("sale_ok", "=", True)]]
    )
    return rpc(
        session,
        base,
        "sale.order",
        "create",
        [
            {
                "partner_id": buyer[0],
                "order_line": [
                    (0, 0, {"product_id": product[0], "price_unit": 8000.0})
                ],
            }
        ],
    )


def rpc(session, base, model, method, args):
    answer = session.post(
        f"{base}/web/dataset/call_kw",
        json={"params": {"model": model, "method": method, "args": args, "kwargs": {}}},
        timeout=60,
    ).json()
    if "error" in answer:
        raise RuntimeError(answer["error"]["data"]["message"])
    return answer["result"]


if __name__ == "__main__":
    main()
