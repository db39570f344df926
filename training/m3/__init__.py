"""M3 trainer: imitator, face parser and amortised predictor on rendered faces, and their export
(ONNX + manifest per network, plus the loss-and-gradient graph). See ``docs/m3.md``.

Run: ``python -m training.m3 train --config training/configs/m3_demo.yaml
--export-dir auperf/models/m3``.
"""
