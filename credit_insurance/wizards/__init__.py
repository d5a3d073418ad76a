from . import credit_insurance_limit_request_wizard
from . import credit_insurance_limit_exceeded
from . import credit_insurance_extension_wizard
