"""The OCR pipeline: decode -> orient -> detect -> crop -> recognise -> reading order -> tables, with timings.

``build_engine(settings)`` loads the models once; the returned ``OcrEngine`` never changes
itself per call, so threads may share it.

``ocr_many`` reads several images as one batch: it decodes them in a thread pool, detects images
of the same network input shape together and recognises the text lines of all of them in
width-sorted batches (more lines to sort means less padding per batch). An image that fails gets
its exception in its slot; the others are read as usual.

With ``engine.orientation = "auto"`` each batch's pages are first classified by the orientation
network (:mod:`engine.orientation`, one batch, a few ms a page); a page turned 90, 180 or 270
degrees is read upright and its boxes are mapped back into the pixels of the image as it came.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from config.settings import CHANNEL_KEYS, EngineSettings
from engine import __version__
from engine.backends import OrtRunner, Runner, choose, resolve_threads
from engine.detection.postprocess import DBParams
from engine.detection.predictor import DetResize, TextDetectorPredictor
from engine.documents import Document, DocumentPage, open_document
from engine.enhance import apply as enhance
from engine.enhance import parse_steps
from engine.layout import Block
from engine.orientation import OrientationClassifier, candidate_turns, to_source, upright
from engine.prefetch import prefetch
from engine.preprocess import load_image, read_source
from engine.reading import arrange
from engine.recognition.cascade import CascadeRecognizer, Gate
from engine.recognition.crop import crop_quad
from engine.recognition.predictor import Recognizer, RecParams, TextRecognizerPredictor
from engine.tables import Table, page_tables
from engine.types import PageResult, TextLine
from engine.weights import ModelFiles, load_charset, model_files, orientation_model

log = logging.getLogger(__name__)

Source = str | os.PathLike[str] | bytes
Outcome = PageResult | Exception  # EngineError: the image itself is bad; anything else: unexpected


class OcrEngine:
    """Image in, page result out."""

    def __init__(
        self,
        detector: TextDetectorPredictor,
        recognizer: Recognizer,
        settings: EngineSettings,
        model_version: str,
        backend: str,
        orienter: OrientationClassifier | None = None,
    ) -> None:
        """``orienter``: finds pages that must be turned to be upright (None: pages are read as they come)."""
        self.detector = detector
        self.orienter = orienter
        self.recognizer = recognizer
        self.settings = settings
        self.model_version = model_version
        self.backend = backend
        self.engine_version = f"teamocr-engine {__version__} ({backend})"
        self.enhance_steps = parse_steps(settings.enhance)
        self._tuned: dict[EngineSettings, OcrEngine] = {}  # tuned(): one engine per other settings
        self.decode_threads = resolve_threads(settings.decode_threads or settings.threads)

    def tuned(self, changes: Mapping[str, Any]) -> OcrEngine:
        """This engine with some settings changed (a channel's: thresholds, ``rec_min_confidence``,
        ``enhance``, ``orientation``, ``model_set``), sharing its networks; another ``model_set``
        loads that set's networks (once per engine: callers keep what this returns)."""
        settings = dataclasses.replace(self.settings, **changes)
        if settings == self.settings:
            return self
        known = self._tuned.get(settings)
        if known is not None:
            return known
        made = build_engine(settings) if settings.model_set != self.settings.model_set else self._sharing(settings)
        self._tuned[settings] = made
        return made

    def _sharing(self, settings: EngineSettings) -> OcrEngine:
        """An engine of other thresholds, steps or orientation over this one's networks."""
        detector = TextDetectorPredictor(
            self.detector.runner,
            DBParams(
                thresh=settings.det_thresh, box_thresh=settings.det_box_thresh, unclip_ratio=settings.det_unclip_ratio
            ),
            self.detector.resize,
            batch_size=self.detector.batch_size,
        )
        orienter = self.orienter if settings.orientation == self.settings.orientation else orientation_for(settings)
        return OcrEngine(detector, self.recognizer, settings, self.model_version, self.backend, orienter)

    def read_settings(self) -> dict[str, Any]:
        """The settings a result records it was read with (those a channel may change)."""
        return {key: getattr(self.settings, key) for key in CHANNEL_KEYS}

    def ocr(self, source: Source, name: str | None = None) -> PageResult:
        """Decode a file or bytes and read it; raises engine.errors.ImageError for bad input."""
        start = time.perf_counter()
        image = self._decode(source, name)
        return self(image, decode_seconds=time.perf_counter() - start)

    def ocr_many(self, sources: Sequence[Source], names: Sequence[str | None] | None = None) -> list[Outcome]:
        """Read several files or buffers as one batch; one result or exception per source, in order.

        An ``EngineError`` (an ``ImageError`` names the source and the cause) means that input is
        bad; any other exception is an unexpected failure of that image alone.
        """
        names = list(names) if names is not None else [None] * len(sources)
        if len(names) != len(sources):
            raise ValueError(f"{len(sources)} sources but {len(names)} names")
        decoded = self._decode_all(sources, names)
        good = [i for i, item in enumerate(decoded) if not isinstance(item, Exception)]
        outcomes: list[Outcome] = [item if isinstance(item, Exception) else _PENDING for item in decoded]
        images = [decoded[i] for i in good]
        pages = self._read([image for image, _ in images], [seconds for _, seconds in images])  # type: ignore[misc]
        for i, page in zip(good, pages):
            outcomes[i] = page
        return outcomes

    def open_document(self, source: Source, name: str | None = None) -> Document | None:
        """The PDF or multi-page TIFF at ``source`` (by content), or None for an image (read it with
        :meth:`ocr` or :meth:`ocr_many`). Raises ImageError for a bad file or document."""
        data, label = read_source(source, name=name, max_bytes=self.settings.max_file_bytes)
        return open_document(
            data,
            label,
            dpi=self.settings.pdf_dpi,
            max_pixels=self.settings.det_max_pixels,
            max_image_pixels=self.settings.max_image_pixels,
            max_pages=self.settings.max_pages,
        )

    def read_document(
        self, document: Document, batch: int = 4, skip: Collection[int] = frozenset()
    ) -> Iterator[tuple[int, Outcome]]:
        """(page number, its result or its error) for each page of ``document`` to read, in order,
        but the pages numbered in ``skip``. Pages needing OCR are read ``batch`` at a time
        (``ocr_many``'s batching: their lines recognised together); text-layer pages are taken as
        they are; a bad page is its own error.

        The pages are rendered ahead in a thread (``engine.prefetch_pages`` of them at most, waiting),
        so that PDFium renders the next pages while the networks read these: at most ``batch`` +
        ``prefetch_pages`` + 1 rendered pages are held at once."""
        pending: list[tuple[int, np.ndarray, float]] = []
        for page, rendered in prefetch(_timed(document.pages(skip)), self.settings.prefetch_pages, "pages"):
            if page.error is not None:
                yield from self._flush(pending)
                pending = []
                yield page.number, page.error
            elif page.lines is not None:
                yield from self._flush(pending)
                pending = []
                yield page.number, self._layer_page(page.lines, page.width, page.height, rendered)
            elif page.image is not None:
                pending.append((page.number, page.image, rendered))
                if len(pending) >= batch:
                    yield from self._flush(pending)
                    pending = []
            del page  # not held while the next page is waited for
        yield from self._flush(pending)

    def _flush(self, pending: list[tuple[int, np.ndarray, float]]) -> Iterator[tuple[int, Outcome]]:
        if pending:
            outcomes = self._read([image for _, image, _ in pending], [seconds for _, _, seconds in pending])
            yield from ((number, outcome) for (number, _, _), outcome in zip(pending, outcomes))

    def _layer_page(self, lines: tuple[TextLine, ...], width: int, height: int, seconds: float) -> PageResult:
        """A page read from its PDF text layer: its lines in reading order, no OCR."""
        start = time.perf_counter()
        ordered, blocks = arrange(lines, width, height)
        timings = {"decode": seconds, "layout": time.perf_counter() - start}
        tables, blocks = self._tables(ordered, blocks, width, height, 0, None, timings)
        timings["total"] = sum(timings.values())
        return PageResult(
            lines=ordered,
            blocks=blocks,
            tables=tables,
            width=width,
            height=height,
            timings=timings,
            engine_version=self.engine_version,
            model_version=self.model_version,
        )

    def __call__(self, image: np.ndarray, decode_seconds: float = 0.0) -> PageResult:
        """Read a decoded BGR uint8 image."""
        page = self._read([image], [decode_seconds])[0]
        if isinstance(page, Exception):
            raise page
        return page

    def _decode(self, source: Source, name: str | None) -> np.ndarray:
        return load_image(
            source, name=name, max_pixels=self.settings.max_image_pixels, max_bytes=self.settings.max_file_bytes
        )

    def _decode_all(
        self, sources: Sequence[Source], names: list[str | None]
    ) -> list[tuple[np.ndarray, float] | Exception]:
        """Decode in a thread pool (OpenCV's decoders release the GIL)."""

        def one(args: tuple[Source, str | None]) -> tuple[np.ndarray, float] | Exception:
            start = time.perf_counter()
            try:
                return self._decode(*args), time.perf_counter() - start
            except Exception as exc:  # noqa: BLE001 - one image's failure is its own
                return exc

        jobs = list(zip(sources, names))
        if len(jobs) <= 1 or self.decode_threads <= 1:
            return [one(job) for job in jobs]
        with ThreadPoolExecutor(min(self.decode_threads, len(jobs)), thread_name_prefix="decode") as pool:
            return list(pool.map(one, jobs))

    def _read(self, images: list[np.ndarray], decode_seconds: list[float]) -> list[Outcome]:
        """Decoded images -> page results: detection batched by shape, recognition across images."""
        n = len(images)
        out: list[Outcome] = [_PENDING] * n
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                out[i] = ValueError(f"expected an H x W x 3 uint8 BGR image, got {image.shape} {image.dtype}")
        t0 = time.perf_counter()
        live = [i for i in range(n) if out[i] is _PENDING]
        enhanced: dict[int, np.ndarray] = {}
        for i in live:
            try:
                enhanced[i] = enhance(images[i], self.enhance_steps)
            except Exception as exc:  # noqa: BLE001
                out[i] = exc
        candidates = self._candidates(enhanced)  # (image, turn, the image so turned)
        t_orient = time.perf_counter()
        found = self.detector.detect_many([turned for _, _, turned in candidates])
        boxes: dict[int, list[tuple[np.ndarray, float]]] = {}
        crops: dict[int, list[np.ndarray]] = {}
        failed: dict[int, Exception] = {}
        for k, ((i, _, turned), result) in enumerate(zip(candidates, found)):
            if isinstance(result, Exception):
                failed.setdefault(i, result)
                continue
            try:
                crops[k] = [crop_quad(turned, quad) for quad, _ in result]
                boxes[k] = result
            except Exception as exc:  # noqa: BLE001
                failed.setdefault(i, exc)
        t1 = time.perf_counter()
        texts = self._recognise(crops)
        t2 = time.perf_counter()
        best: dict[
            int, tuple[float, int, list[tuple[str, float]]]
        ] = {}  # image -> its best (score, candidate, reading)
        for k, read in texts.items():
            i = candidates[k][0]
            if isinstance(read, Exception):
                failed.setdefault(i, read)
                continue
            score = self._score(boxes[k], read)
            if i not in best or score > best[i][0]:  # a tie keeps the earlier turn: 0 comes first
                best[i] = (score, k, read)
        total_lines = sum(len(c) for c in crops.values()) or 1
        pages = max(1, len(enhanced))
        for i in enhanced:
            if i not in best:
                out[i] = failed[i]
                continue
            _, k, read = best[i]
            mine = [c for c, candidate in enumerate(candidates) if candidate[0] == i and c in crops]
            timings = {"decode": decode_seconds[i], "detect": (t1 - t_orient) / pages}
            if self.orienter is not None:
                timings["orient"] = (t_orient - t0) / pages
            timings["recognize"] = (t2 - t1) * sum(len(crops[c]) for c in mine) / total_lines
            out[i] = self._page(images[i], boxes[k], read, timings, candidates[k][1])
        return out

    def _candidates(self, images: dict[int, np.ndarray]) -> list[tuple[int, int, np.ndarray]]:
        """The readings to make of each page: (page, clockwise turn, the page so turned).

        Without the classifier, or where it finds the page upright, one reading as it came. Where
        it proposes a turn, the page is read both as it came and turned (both quarter turns when
        the proposal is one), and the reading the recogniser is surest of wins (:meth:`_score`):
        the classifier's mistakes then cost time, not text. A classifier failure reads every page
        as it came (it is a help, not a stage a page needs)."""
        plain = [(i, 0, image) for i, image in images.items()]
        if self.orienter is None or not images:
            return plain
        try:
            found = self.orienter.turns(list(images.values()))
        except Exception:  # noqa: BLE001 - logged; the pages are read unturned
            log.exception("orientation classifier failed; reading %d page(s) as they came", len(images))
            return plain
        return [
            (i, degrees, upright(image, degrees))
            for (i, image), turn in zip(images.items(), found)
            for degrees in candidate_turns(turn.degrees)
        ]

    def _score(self, boxes: list[tuple[np.ndarray, float]], read: list[tuple[str, float]]) -> float:
        """How sure the recogniser is of a reading: the characters of its kept lines that run left
        to right in that turn of the page (a box at least as wide as tall), each weighted by its
        line's confidence. Upside down, the recogniser reads little and unsurely; sideways, lines
        stand upright (the crops would be turned back and read, so they must not count)."""
        floor = self.settings.rec_min_confidence
        total = 0.0
        for (quad, _), (text, conf) in zip(boxes, read):
            width = float(np.linalg.norm(quad[1] - quad[0]))
            height = float(np.linalg.norm(quad[3] - quad[0]))
            if conf >= floor and width >= height:
                total += conf * len(text.strip())
        return total

    def _recognise(self, crops: dict[int, list[np.ndarray]]) -> dict[int, list[tuple[str, float]] | Exception]:
        """All images' lines in one width-sorted run; when that fails, each image's lines alone."""
        keys = list(crops)
        try:
            flat = self.recognizer([crop for i in keys for crop in crops[i]])
        except Exception as exc:  # noqa: BLE001 - isolated below
            if len(keys) <= 1:
                return {i: exc for i in keys}
            out: dict[int, list[tuple[str, float]] | Exception] = {}
            for i in keys:
                try:
                    out[i] = self.recognizer(crops[i])
                except Exception as exc:  # noqa: BLE001
                    out[i] = exc
            return out
        result: dict[int, list[tuple[str, float]] | Exception] = {}
        start = 0
        for i in keys:
            result[i] = flat[start : start + len(crops[i])]
            start += len(crops[i])
        return result

    def _page(
        self,
        source: np.ndarray,
        boxes: list[tuple[np.ndarray, float]],
        texts: list[tuple[str, float]],
        timings: dict[str, float],
        turn: int = 0,
    ) -> PageResult:
        """The page of ``source`` (the image as it came); ``boxes`` were found on it turned ``turn``
        degrees clockwise, and are mapped back into its pixels, then put in reading order on the
        upright page (``engine.reading``; timing ``layout``)."""
        h, w = source.shape[:2]
        lines = []
        for (quad, _), (text, conf) in zip(boxes, texts):
            if text.strip() and conf >= self.settings.rec_min_confidence:
                pts = tuple((float(x), float(y)) for x, y in to_source(np.asarray(quad, np.float64), turn, w, h))
                lines.append(TextLine(text, pts, conf))  # type: ignore[arg-type]
        start = time.perf_counter()
        ordered, blocks = arrange(lines, w, h, turn)
        timings["layout"] = time.perf_counter() - start
        tables, blocks = self._tables(ordered, blocks, w, h, turn, source, timings)
        timings["total"] = sum(timings.values())
        return PageResult(
            lines=ordered,
            blocks=blocks,
            width=w,
            height=h,
            timings=timings,
            engine_version=self.engine_version,
            model_version=self.model_version,
            rotation=turn,
            tables=tables,
        )

    def _tables(
        self,
        lines: tuple[TextLine, ...],
        blocks: tuple[Block, ...],
        width: int,
        height: int,
        turn: int,
        image: np.ndarray | None,
        timings: dict[str, float],
    ) -> tuple[tuple[Table, ...], tuple[Block, ...]]:
        """The page's tables and its blocks with each table one block (``engine.tables``; timing
        ``tables``); no tables and the blocks as they are when ``engine.tables`` is off."""
        if not self.settings.tables:
            return (), blocks
        start = time.perf_counter()
        found = page_tables(lines, blocks, width, height, turn, image)
        timings["tables"] = time.perf_counter() - start
        return found


_PENDING: PageResult = PageResult(lines=(), width=0, height=0)  # a slot not filled yet


def _timed(pages: Iterator[DocumentPage]) -> Iterator[tuple[DocumentPage, float]]:
    """Each page with the seconds it took to render or decode (its ``decode`` timing); ``pages``
    is closed with this (in the thread that ran it: a PDF closes its document there)."""
    try:
        while True:
            start = time.perf_counter()
            page = next(pages, None)
            if page is None:
                return
            yield page, time.perf_counter() - start
            del page  # not held while the next page is rendered
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def _runners(settings: EngineSettings, files: ModelFiles) -> tuple[Runner, Runner, str]:
    backend, device = choose(settings.backend, settings.device)
    if backend == "onnxruntime":
        rec = _rec_runner(settings, files)
        det = OrtRunner(files.det, resolve_threads(settings.threads), cuda=device == "cuda", spinning=settings.spin)
        return det, rec, backend + ("-int8" if settings.int8 and device == "cpu" else "")
    if settings.int8:
        log.info("engine.int8 applies to ONNX Runtime on CPU only; the torch backend runs float")
    from engine.weights import torch_modules

    det_module, rec_module = torch_modules(files)
    return _torch_runner(settings, det_module, device), _torch_runner(settings, rec_module, device), f"torch-{device}"


def _rec_runner(settings: EngineSettings, files: ModelFiles) -> Runner:
    """The recogniser of ``files`` on the backend and device ``settings`` choose (INT8 on the CPU
    with ``engine.int8``, as the engine's own)."""
    backend, device = choose(settings.backend, settings.device)
    if backend == "onnxruntime":
        rec_path = files.rec
        if settings.int8 and device == "cpu":  # MatMulInteger is a CPU (VNNI) win; GPUs run float
            from engine.quantize import default_cache_dir, int8_model

            rec_path = int8_model(files.rec, Path(settings.cache_dir) if settings.cache_dir else default_cache_dir())
        return OrtRunner(rec_path, resolve_threads(settings.threads), cuda=device == "cuda", spinning=settings.spin)
    from engine.weights import torch_recognizer

    return _torch_runner(settings, torch_recognizer(files), device)


def _torch_runner(settings: EngineSettings, module: Any, device: str) -> Runner:
    import torch  # only for the torch backend

    from engine.torch_runner import TorchRunner

    if device == "cpu":
        # torch's intra-op pool is per process; the process's one engine owns it
        torch.set_num_threads(resolve_threads(settings.threads))
    half = settings.half_dtype if settings.half and device == "cuda" else None
    return TorchRunner(module, torch.device(device), half)


def build_engine(settings: EngineSettings, files: ModelFiles | None = None) -> OcrEngine:
    """Load the configured model set (or the version ``files``) on the configured backend (once),
    and with ``engine.rec_cascade`` the cascade's first recogniser."""
    files = files or model_files(settings.model_set)
    det_runner, rec_runner, backend = _runners(settings, files)
    first = cascade_reader(settings, files)
    return assemble_engine(
        settings, det_runner, rec_runner, files, backend, orienter=orientation_for(settings), first_reader=first
    )


@dataclasses.dataclass(frozen=True)
class FirstReader:
    """A recognition cascade's first recogniser (:mod:`engine.recognition.cascade`) and its charset."""

    runner: Runner
    charset: list[str]
    version: str


def cascade_reader(settings: EngineSettings, files: ModelFiles) -> FirstReader | None:
    """The first recogniser ``engine.rec_cascade`` asks for, or None: off, or the engine's own set
    (a cascade of a set onto itself would read the unsure lines twice alike)."""
    if settings.rec_cascade == "off" or settings.rec_cascade == files.name:
        return None
    first = model_files(settings.rec_cascade)
    return FirstReader(_rec_runner(settings, first), load_charset(first.charset), first.version)


ORIENTATION_MODES = ("auto", "off")


def orientation_for(settings: EngineSettings) -> OrientationClassifier | None:
    """The page orientation classifier ``engine.orientation`` asks for (None for "off"), on ONNX
    Runtime whatever the backend (a small network: a few ms a page on one CPU core)."""
    if settings.orientation not in ORIENTATION_MODES:
        raise ValueError(f"engine.orientation must be one of {ORIENTATION_MODES}, got {settings.orientation!r}")
    if settings.orientation == "off":
        return None
    _, device = choose(settings.backend, settings.device)
    runner = OrtRunner(
        orientation_model(), resolve_threads(settings.threads), cuda=device == "cuda", spinning=settings.spin
    )
    return OrientationClassifier(runner, settings.orientation_min_score)


def assemble_engine(
    settings: EngineSettings,
    det_runner: Runner,
    rec_runner: Runner,
    files: ModelFiles,
    backend: str,
    *,
    orienter: OrientationClassifier | None = None,
    first_reader: FirstReader | None = None,
) -> OcrEngine:
    """The engine around two ready networks (``engine.export`` compares runners this way), the
    page orientation classifier and a cascade's first recogniser when given.

    Batch sizes follow the device: a GPU wants many images and lines per pass, a CPU few.
    """
    gpu = "cuda" in det_runner.name
    engine = engine_around(
        settings,
        det_runner,
        rec_runner,
        load_charset(files.charset),
        files.version,
        backend,
        det_batch_size=settings.gpu_det_batch_size if gpu else settings.det_batch_size,
        rec_batch_size=settings.gpu_rec_batch_size if gpu else settings.rec_batch_size,
        orienter=orienter,
        first_reader=first_reader,
    )
    log.info(
        "engine ready: %s models on %s%s%s",
        files.version,
        backend,
        ", pages oriented" if orienter else "",
        f", lines read by {first_reader.version} first" if first_reader else "",
    )
    return engine


def engine_around(
    settings: EngineSettings,
    det_runner: Runner,
    rec_runner: Runner,
    charset: list[str],
    model_version: str,
    backend: str,
    *,
    det_batch_size: int,
    rec_batch_size: int,
    orienter: OrientationClassifier | None = None,
    first_reader: FirstReader | None = None,
) -> OcrEngine:
    """The detector and recogniser over two runners, thresholds and sizes from ``settings``, and
    the engine around them (:func:`assemble_engine`, and ``engine.training.runtime.make_ocr``
    for modules being trained). With ``first_reader`` the recogniser is a cascade: that one reads
    every line, ``rec_runner``'s those whose ``rec_cascade_signal`` is below ``rec_cascade_gate``."""
    detector = TextDetectorPredictor(
        det_runner,
        DBParams(
            thresh=settings.det_thresh, box_thresh=settings.det_box_thresh, unclip_ratio=settings.det_unclip_ratio
        ),
        DetResize(
            min_side=settings.det_min_side,
            max_upscale=settings.det_max_upscale,
            max_side=settings.det_max_side,
            max_pixels=settings.det_max_pixels,
            text_height=settings.det_text_height,
            probe=settings.det_probe_scale,
        ),
        batch_size=det_batch_size,
    )
    params = RecParams(
        batch_size=rec_batch_size, min_width=settings.rec_min_width, blank_levels=settings.rec_blank_levels
    )
    own = TextRecognizerPredictor(rec_runner, charset, params)
    recognizer: Recognizer = own
    if first_reader is not None:
        first = TextRecognizerPredictor(first_reader.runner, first_reader.charset, params)
        recognizer = CascadeRecognizer(first, own, Gate(settings.rec_cascade_signal, settings.rec_cascade_gate))
    return OcrEngine(detector, recognizer, settings, model_version, backend, orienter)
