"""The migration scripts, run as Odoo runs them on ``-u``."""

import importlib.util
import pathlib

from odoo.tests import TransactionCase, tagged

MIGRATIONS = pathlib.Path(__file__).resolve().parents[1] / "migrations"


def load_script(version, name):
    path = MIGRATIONS / version / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{version}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@tagged("post_install", "-at_install")
class TestMigration(TransactionCase):
    def test_18_0_1_0_1_gives_each_allianz_trade_api_its_url(self):
        """18.0.1.0.0 called every Allianz Trade API under one base URL; the
        host stays, each API gets its own path for the environment."""
        Insurer = self.env["credit.insurance.insurer"]
        production = Insurer.create(
            {
                "name": "Allianz Trade",
                "provider": "allianz_trade",
                "environment": "production",
                "api_base_url": "https://api.allianz-trade.com/",
            }
        )
        proxied = Insurer.create(
            {
                "name": "Allianz Trade behind a proxy",
                "provider": "allianz_trade",
                "environment": "sandbox",
                "api_base_url": "https://proxy.example.com/allianz",
            }
        )
        atradius = Insurer.create(
            {
                "name": "Atradius",
                "provider": "atradius",
                "api_base_url": "https://api-uat.atradius.com",
            }
        )
        script = load_script("18.0.1.0.1", "post-migrate")
        script.migrate(self.env.cr, None)  # a new database: nothing to do
        self.assertEqual(
            proxied.login_api_url,
            "https://api-services.uat.1placedessaisons.com/uatm/v1/idp",
            "until migrated: the default of the environment",
        )
        script.migrate(self.env.cr, "18.0.1.0.0")
        self.env.invalidate_all()
        self.assertRecordValues(
            production + proxied,
            [
                {
                    "login_api_url": "https://api.allianz-trade.com/v1/idp",
                    "search_api_url": "https://api.allianz-trade.com/search/v2",
                    "cover_api_url": "https://api.allianz-trade.com/riskinfo/v3",
                },
                {
                    # the sandbox's marker sits at a different place in each
                    "login_api_url": "https://proxy.example.com/allianz/uatm/v1/idp",
                    "search_api_url": "https://proxy.example.com/allianz/search/uatm-v2",
                    "cover_api_url": "https://proxy.example.com/allianz/uatm/riskinfo/v3",
                },
            ],
        )
        self.assertFalse(atradius.login_api_url, "one base URL serves Atradius")
        config = proxied._get_provider(None).config
        self.assertEqual(
            config.api_urls["search"],
            "https://proxy.example.com/allianz/search/uatm-v2",
        )
