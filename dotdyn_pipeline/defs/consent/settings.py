"""How often the consent sensors look, and how long one look may read."""

from __future__ import annotations

import os

#: Seconds between two ticks of each consent sensor (DOTDYN_CONSENT_INTERVAL, default 60).
CONSENT_INTERVAL = int(os.environ.get("DOTDYN_CONSENT_INTERVAL", "60"))
#: Seconds of reading one tick may spend (DOTDYN_CONSENT_TICK_BUDGET, default 30): well inside Dagster's
#: 60 s limit on a sensor evaluation, since a page that has started is finished and recorded.
TICK_BUDGET = float(os.environ.get("DOTDYN_CONSENT_TICK_BUDGET", "30"))
#: Dotdigital calls in flight at once while applying an account's unsubscribes.
DOTDIGITAL_WORKERS = 4
