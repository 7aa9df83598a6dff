"""The OCR pipeline: decode -> detect -> crop -> recognise -> reading order, with timings.

``build_engine(settings)`` loads the models once; the returned ``OcrEngine`` never changes
itself per call, so threads may share it.
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np

from config.settings import EngineSettings
from engine import __version__
from engine.backends import OrtRunner, Runner, choose, resolve_threads
from engine.detection.postprocess import DBParams
from engine.detection.predictor import DetResize, TextDetectorPredictor
from engine.enhance import apply as enhance, parse_steps
from engine.layout import reading_order
from engine.preprocess import load_image
from engine.recognition.crop import crop_quad
from engine.recognition.predictor import RecParams, TextRecognizerPredictor
from engine.types import PageResult, TextLine
from engine.weights import ModelFiles, load_charset, model_files

log = logging.getLogger(__name__)


class OcrEngine:
    """Image in, page result out."""

    def __init__(self, detector: TextDetectorPredictor, recognizer: TextRecognizerPredictor,
                 settings: EngineSettings, model_version: str, backend: str) -> None:
        self.detector = detector
        self.recognizer = recognizer
        self.settings = settings
        self.model_version = model_version
        self.backend = backend
        self.engine_version = f"teamocr-engine {__version__} ({backend})"
        self.enhance_steps = parse_steps(settings.enhance)

    def ocr(self, source: str | os.PathLike[str] | bytes, name: str | None = None) -> PageResult:
        """Decode a file or bytes and read it; raises engine.errors.ImageError for bad input."""
        start = time.perf_counter()
        image = load_image(source, name=name, max_pixels=self.settings.max_image_pixels,
                           max_bytes=self.settings.max_file_bytes)
        return self(image, decode_seconds=time.perf_counter() - start)

    def __call__(self, image: np.ndarray, decode_seconds: float = 0.0) -> PageResult:
        """Read a decoded BGR uint8 image."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 BGR image, got {image.shape} {image.dtype}")
        t0 = time.perf_counter()
        image = enhance(image, self.enhance_steps)
        boxes = self.detector(image)
        t1 = time.perf_counter()
        crops = [crop_quad(image, quad) for quad, _ in boxes]
        texts = self.recognizer(crops)
        t2 = time.perf_counter()
        lines = []
        for (quad, _), (text, conf) in zip(boxes, texts):
            if text.strip() and conf >= self.settings.rec_min_confidence:
                pts = tuple((float(x), float(y)) for x, y in quad)
                lines.append(TextLine(text, pts, conf))  # type: ignore[arg-type]
        order = reading_order([np.asarray(line.points) for line in lines])
        h, w = image.shape[:2]
        return PageResult(
            lines=tuple(lines[i] for i in order), width=w, height=h,
            timings={"decode": decode_seconds, "detect": t1 - t0, "recognize": t2 - t1,
                     "total": decode_seconds + (t2 - t0)},
            engine_version=self.engine_version, model_version=self.model_version,
        )


def _runners(settings: EngineSettings, files: ModelFiles) -> tuple[Runner, Runner, str]:
    backend, device = choose(settings.backend, settings.device)
    threads = resolve_threads(settings.threads)
    if backend == "onnxruntime":
        return (OrtRunner(files.det, threads, cuda=device == "cuda"),
                OrtRunner(files.rec, threads, cuda=device == "cuda"), backend)
    import torch  # only for the torch backend

    from engine.torch_runner import TorchRunner
    from engine.weights import torch_modules

    if device == "cpu":
        # torch's intra-op pool is per process; the process's one engine owns it
        torch.set_num_threads(threads)
    det, rec = torch_modules(files)
    half = settings.half and device == "cuda"
    dev = torch.device(device)
    return TorchRunner(det, dev, half), TorchRunner(rec, dev, half), f"torch-{device}"


def build_engine(settings: EngineSettings, files: ModelFiles | None = None) -> OcrEngine:
    """Load the configured model set (or the version ``files``) on the configured backend (once)."""
    files = files or model_files(settings.model_set)
    det_runner, rec_runner, backend = _runners(settings, files)
    return assemble_engine(settings, det_runner, rec_runner, files, backend)


def assemble_engine(settings: EngineSettings, det_runner: Runner, rec_runner: Runner, files: ModelFiles,
                    backend: str) -> OcrEngine:
    """The engine around two ready networks (``engine.export`` compares runners this way)."""
    detector = TextDetectorPredictor(
        det_runner,
        DBParams(thresh=settings.det_thresh, box_thresh=settings.det_box_thresh,
                 unclip_ratio=settings.det_unclip_ratio),
        DetResize(min_side=settings.det_min_side, max_upscale=settings.det_max_upscale,
                  max_side=settings.det_max_side,
                  max_pixels=settings.det_max_pixels),
    )
    recognizer = TextRecognizerPredictor(rec_runner, load_charset(files.charset),
                                         RecParams(batch_size=settings.rec_batch_size,
                                                   min_width=settings.rec_min_width))
    log.info("engine ready: %s models on %s", files.version, backend)
    return OcrEngine(detector, recognizer, settings, files.version, backend)
