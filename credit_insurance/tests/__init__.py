from . import test_exposure
from . import test_limit_history
from . import test_invoice_cover
from . import test_security
from . import test_limit_request
from . import test_connectors
from . import test_declaration
from . import test_declaration_exchange
