"""The interface reads in French: with the French language loaded, no label of
the credit insurance addons' views, fields, selections, menus or actions is
left in English."""

from odoo.tests import TransactionCase, tagged

# Words spelled the same in both languages.
SAME_IN_FRENCH = {
    "Actions",
    "Date",
    "Description",
    "Documents",
    "Export",
    "Notes",
    "Total",
    "Type",
    "Sandbox",
    "Sections",
    "Message",
    "Messages",
    "Contact",
    "Contacts",
    "Code",
    "Production",
    "SIREN",
    "URL",
    "Allianz Trade",
    "Atradius",
    "Coface",
    "Conditions",
    "Configuration",
    "ID",
    "Note",
}


@tagged("post_install", "-at_install")
class TestFrenchInterface(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("fr_FR")
        cls.modules = (
            cls.env["ir.module.module"]
            .search(
                [("name", "=like", "credit_insurance%"), ("state", "=", "installed")]
            )
            .mapped("name")
        )
        cls.env["ir.module.module"]._load_module_terms(
            cls.modules, ["fr_FR"], overwrite=True
        )

    def records(self, model):
        data = self.env["ir.model.data"].search(
            [("module", "in", self.modules), ("model", "=", model)]
        )
        return self.env[model].browse(data.mapped("res_id")).exists()

    def english_left(self, pairs):
        return sorted(
            {
                english
                for english, french in pairs
                if english
                and english == french
                and english.strip() not in SAME_IN_FRENCH
                and not english.startswith("http")  # placeholders of addresses
                and any(c.isalpha() for c in english)
            }
        )

    def assertAllFrench(self, pairs, what):
        left = self.english_left(pairs)
        self.assertFalse(left, f"{what} still in English: {left}")

    def test_views(self):
        pairs = []
        for view in self.records("ir.ui.view"):
            english = view.with_context(lang="en_US").arch_db
            french = view.with_context(lang="fr_FR").arch_db
            terms = view._fields["arch_db"].get_translation_dictionary(
                english, {"fr_FR": french}
            )
            pairs += [(term, values["fr_FR"]) for term, values in terms.items()]
        self.assertGreater(len(pairs), 50)
        self.assertAllFrench(pairs, "view labels")

    def test_fields_and_selections(self):
        fields = self.records("ir.model.fields")
        pairs = [
            (
                field.with_context(lang="en_US").field_description,
                field.with_context(lang="fr_FR").field_description,
            )
            for field in fields
        ]
        pairs += [
            (
                field.with_context(lang="en_US").help,
                field.with_context(lang="fr_FR").help,
            )
            for field in fields
            if field.help
        ]
        selections = self.records("ir.model.fields.selection")
        pairs += [
            (s.with_context(lang="en_US").name, s.with_context(lang="fr_FR").name)
            for s in selections
        ]
        self.assertGreater(len(pairs), 100)
        self.assertAllFrench(pairs, "field labels, help and choices")

    def test_menus_actions_and_groups(self):
        pairs = []
        # A scheduled job's name is the one of its server action.
        for model in (
            "ir.ui.menu",
            "ir.actions.act_window",
            "ir.actions.server",
            "res.groups",
        ):
            field = "name"
            for record in self.records(model):
                pairs.append(
                    (
                        record.with_context(lang="en_US")[field],
                        record.with_context(lang="fr_FR")[field],
                    )
                )
        self.assertGreater(len(pairs), 10)
        self.assertAllFrench(pairs, "menus, actions, groups and scheduled jobs")
