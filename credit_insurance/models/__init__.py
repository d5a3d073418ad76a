from . import credit_insurance_insurer
from . import credit_insurance_policy
from . import credit_insurance_limit
from . import credit_insurance_limit_request
from . import credit_insurance_cover
from . import res_partner
from . import account_move
