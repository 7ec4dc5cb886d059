"""NIR import (``spikehq import-nir``): NIR graphs from snnTorch, Norse and other frameworks →
``searched.json`` + integer weights for ``make gen`` (docs/nir.md)."""
