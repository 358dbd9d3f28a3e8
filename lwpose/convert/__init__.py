"""Torch ↔ OpenVINO conversion for the Lightweight OpenPose family (tools layer: imports torch).

- ``export``: network → model directory (IR with u8 NHWC BGR input, FP32/FP16/INT8, metadata in
  ``lwpose.json`` and in the IR's ``rt_info``).
- ``import_ir``: OpenVINO IR → torch checkpoint (``import_ir(xml_path, out_path)``).
- ``compare``: torch vs IR maps through :mod:`lwpose.backends`.

Checkpoints are read by :mod:`lwpose.checkpoint`; calibration frames come from
:func:`lwpose.media.read_frames` and :func:`lwpose.preprocess.fit`.
"""
