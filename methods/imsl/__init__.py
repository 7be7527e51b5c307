"""IMSL: inter-modality similarity learning for unsupervised 2- and 3-modality person re-ID.

Pang, Zhao, Liu, Sharma, Wang, TCSVT 34(10), 2024; read from the official code (github.com/zqpang/IMSL); what
follows the code and what is reconstructed: docs/methods.md, IMSL. Modules:
:mod:`.mmc` (modality mean clustering), :mod:`.mil` + :mod:`.proxies` (modality-aware invariant
learning), :mod:`.smr` (shape-based mutual reinforcement), :mod:`.mmre` (reliability weights,
reconstructed), :mod:`.method` (the plugin), :mod:`.config` (switches and official behaviours).
"""
from reidkit_methods.imsl.config import IMSLConfig
from reidkit_methods.imsl.method import IMSL

__all__ = ["IMSL", "IMSLConfig"]
