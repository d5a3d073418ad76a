from . import test_export_cover
from . import test_export_documents
from . import test_export_orders
from . import test_export_political
