"""Calls through the test server's two JSON-RPC doors, as clients make them."""

import json

ACCESS_ERROR = "odoo.exceptions.AccessError"


class JsonRpcMixin:
    """For an ``HttpCase``: ``call_kw`` in the session of the user last
    authenticated (the web client's door), ``execute_kw`` with a login and
    password (external clients). Both answer ``(result, error)``, the error
    being the ``data`` of the JSON-RPC error (``name``, ``message``) or None.
    """

    def jsonrpc(self, route, params):
        response = self.url_open(
            route,
            json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}),
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()
        answer = response.json()
        return answer.get("result"), answer.get("error", {}).get("data")

    def call_kw(self, model, method, *args, **kwargs):
        return self.jsonrpc(
            "/web/dataset/call_kw",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )

    def execute_kw(self, login, password, model, method, *args, **kwargs):
        uid, error = self.jsonrpc(
            "/jsonrpc",
            {
                "service": "common",
                "method": "login",
                "args": [self.env.cr.dbname, login, password],
            },
        )
        self.assertTrue(uid and not error, f"{login} cannot log in: {error}")
        return self.jsonrpc(
            "/jsonrpc",
            {
                "service": "object",
                "method": "execute_kw",
                "args": [
                    self.env.cr.dbname,
                    uid,
                    password,
                    model,
                    method,
                    list(args),
                    kwargs,
                ],
            },
        )

    def assertRefused(self, answer, error_name=ACCESS_ERROR, msg=None):
        """The call failed with ``error_name`` and returned nothing."""
        result, error = answer
        self.assertIsNone(result, msg)
        self.assertEqual((error or {}).get("name"), error_name, msg)
