"""COCO training of the Lightweight OpenPose family in torch (``lwpose train``, docs/train.md).

``labels`` (COCO → training labels, validation subsets), ``targets`` (stride-8 heatmaps and
PAFs), ``dataset`` (augmentation), ``loss``, ``optim``, ``checkpoint`` (init, save, resume),
``distributed`` (DDP setup, sampler), ``validate`` (through ``lwpose.eval``), ``logs`` and
``loop`` (``train(config)``); ``config`` holds the settings and stays torch-free.
"""
