"""Built-in auto-annotation model runners, one plugin module per runner kind
(``opencv`` registers two: ``opencv-haar`` and ``opencv-hog``).

Each module registers its kind through ``register_model_runners``; the private modules (``_common``,
``_onnx``, ``_yolo``) are what several kinds share: option parsing, onnxruntime sessions, and the
decoding of Ultralytics YOLO outputs (run locally by ``onnx-yolo`` or remotely through ``http``).
"""
