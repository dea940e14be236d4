"""driftrec: a simulation lab for stress-testing continual-learning recommenders under drift.

Importing ``driftrec`` registers its Gymnasium ids (``driftrec/RecDrift-v0``,
``driftrec/Sudden-v0``, ...).
"""

from driftrec import envs as envs

__version__ = "0.1.0"
