"""Azure region names in the form the APIs take (``westeurope``, not ``West Europe``).

ARM and the metrics data plane put the region into URLs and query strings
(``https://{location}.metrics.monitor.azure.com``, ``usages?$filter=location eq '…'``), where only
the programmatic name works: lower-case letters and digits, as ``az account list-locations
--query "[].name"`` prints them. The portal's display names (``West Europe``) and ARM's own
echoes of them (an autoscale setting's ``"location": "West US"``) must be turned into that form.

``KNOWN`` is the public and sovereign regions as of this release; a region named later is still
accepted in its canonical form (new regions open every year, Azure Stack Hub names its own), but
a name one or two letters away from a known one is taken for a typo.
"""

from __future__ import annotations

import difflib
import re

_NAMES = """
    australiacentral australiacentral2 australiaeast australiasoutheast austriaeast
    belgiumcentral brazilsouth brazilsoutheast canadacentral canadaeast centralindia centralus
    chilecentral denmarkeast eastasia eastus eastus2 francecentral francesouth germanynorth
    germanywestcentral indonesiacentral israelcentral italynorth japaneast japanwest
    jioindiacentral jioindiawest koreacentral koreasouth malaysiawest mexicocentral
    newzealandnorth northcentralus northeurope norwayeast norwaywest polandcentral qatarcentral
    southafricanorth southafricawest southcentralus southeastasia southindia spaincentral
    swedencentral swedensouth switzerlandnorth switzerlandwest uaecentral uaenorth uksouth ukwest
    westcentralus westeurope westindia westus westus2 westus3
    usgovarizona usgovtexas usgovvirginia usdodcentral usdodeast
    chinaeast chinaeast2 chinaeast3 chinanorth chinanorth2 chinanorth3
"""
KNOWN = frozenset(_NAMES.split())

_CANONICAL = re.compile(r"^[a-z][a-z0-9]*$")


def canonical(name: str) -> str:
    """The programmatic form of a region name: ``"West Europe"`` → ``"westeurope"``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def problem(name: str) -> str:
    """Why ``name`` is not a region name the APIs take, with a suggestion; ``""`` when it is."""
    if not name:
        return ""
    fixed = canonical(name)
    if not _CANONICAL.match(name):
        hint = fixed if fixed in KNOWN or _CANONICAL.match(fixed) else ""
        close = hint or _closest(fixed)
        return "must be the region's programmatic name (lower case, no spaces)" + (
            f" (did you mean {close!r}?)" if close else ""
        )
    if name not in KNOWN:
        close = _closest(name)
        if close:
            return f"is not an Azure region (did you mean {close!r}?)"
    return ""


def _closest(name: str) -> str:
    found = difflib.get_close_matches(name, sorted(KNOWN), n=1, cutoff=0.85)
    return found[0] if found else ""
