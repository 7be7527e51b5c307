"""Modality roles: what kind of light a modality's images hold, so that methods ask for a role, not a name.

A dataset names its modalities as it likes (``visible``, ``rgb``, ``thermal``, ``nir`` ...) and declares
each one's role in ``ReIDDataset.roles``; methods read ``BuildContext.colour_modality`` (or ``roles``) where
they treat the colour images apart (CHCR's channel views, IMSL's and dc-baseline's channel exchange).

Roles:

- ``colour``: three-channel colour images (at most one modality per dataset);
- ``infrared``: near-infrared or thermal images (one intensity, stored as grey or false colour);
- ``other``: anything else (depth, sketches ...), treated like any non-colour modality.

:func:`infer_roles` gives the roles of the usual names: a modality called ``visible``, ``rgb``, ``vis``,
``color`` or ``colour`` (any case) carries colour; ``infrared``, ``ir``, ``nir``, ``tir``, ``thermal`` and
their kin are infrared. The generic layout uses it for its folder names, and ``dataset_args.colour_modality``
names the colour modality where the folders are called something else.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

COLOUR = "colour"
INFRARED = "infrared"
OTHER = "other"
ROLES = (COLOUR, INFRARED, OTHER)

#: modality names that mean colour images (compared in lower case)
COLOUR_NAMES = ("visible", "rgb", "vis", "color", "colour")
#: modality names that mean near-infrared or thermal images (compared in lower case)
INFRARED_NAMES = ("infrared", "ir", "nir", "swir", "tir", "lwir", "thermal", "ni", "ti")


def infer_roles(modalities: Sequence[str], *, colour: str | None = None) -> dict[str, str]:
    """``{modality: role}`` from the names alone; ``colour`` names the colour modality explicitly.

    With ``colour`` given, that modality is the colour one and no other is; without it, the first modality
    with a colour name is (a second one would be ambiguous and stays ``other``).
    """
    if colour is not None and colour not in modalities:
        raise ValueError(f"the colour modality {colour!r} is not one of the modalities {list(modalities)}")
    roles: dict[str, str] = {}
    for m in modalities:
        name = m.lower()
        if colour is not None:
            is_colour = m == colour
        else:
            is_colour = name in COLOUR_NAMES and COLOUR not in roles.values()
        roles[m] = COLOUR if is_colour else INFRARED if name in INFRARED_NAMES else OTHER
    return roles


def check_roles(roles: Mapping[str, str], modalities: Sequence[str], where: str) -> dict[str, str]:
    """``roles`` as a dict after checking it: one known role per modality, at most one colour modality."""
    roles = dict(roles)
    if set(roles) != set(modalities):
        raise ValueError(f"{where}: roles are declared for {sorted(roles)}, the modalities are {list(modalities)}")
    unknown = sorted({r for r in roles.values() if r not in ROLES})
    if unknown:
        raise ValueError(f"{where}: unknown modality roles {unknown}; known: {', '.join(ROLES)}")
    colour = [m for m, r in roles.items() if r == COLOUR]
    if len(colour) > 1:
        raise ValueError(f"{where}: more than one colour modality ({', '.join(colour)}); declare one")
    return {m: roles[m] for m in modalities}


def colour_modality(roles: Mapping[str, str]) -> str | None:
    """The modality whose role is ``colour``; None when there is none."""
    return next((m for m, r in roles.items() if r == COLOUR), None)
