"""Run an adapter scenario against both emulator profiles (protocol §6.1).

``ailink``: every protocol extension (202 + ``/v1/approvals``, stored outcomes). ``real``: the real
gateway's behaviour (approval-gated requests are held until decided, nothing is stored, the approval
is never named to the agent). Tests branch on ``gateway.serves_extensions`` where the two promise
different things.
"""

from __future__ import annotations

import pytest

#: ``@both_profiles`` on a test that uses the ``ailink_gateway`` fixture (directly or through another).
both_profiles = pytest.mark.parametrize("ailink_gateway", ["ailink", "real"], indirect=True)
