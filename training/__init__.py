"""auperf trainers (PyTorch): the shared foundation in :mod:`training.common` and one
subpackage per method (:mod:`training.m0`, later m1-m4).

``training`` imports ``auperf`` (networks, manifest format, renderer, alignment); ``auperf``
never imports ``training``. See ``training/README.md``.
"""
