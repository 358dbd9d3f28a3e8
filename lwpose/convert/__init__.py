"""Torch ↔ OpenVINO conversion for the Lightweight OpenPose family (tools layer: imports torch).

- ``checkpoint``: read checkpoints, build the matching ``lwpose.model`` network.
- ``export``: network → model directory (IR with u8 NHWC BGR input, FP32/FP16/INT8, ``lwpose.json``).
- ``import_ir``: OpenVINO IR → torch checkpoint (``import_ir(xml_path, out_path)``).
- ``compare``: torch vs IR maps and COCO AP; ``frames``: calibration/check images.
"""
