"""``GET /api/v1/results/<id>/pdf`` on the real app, Redis and store, with real files in the shared
folder: the searchable PDF's text, read back with PDFium, is the result's text; a born-digital PDF
comes back as it came; refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pypdfium2 as pdfium
from flask.testing import FlaskClient

from daemon.records import ResultRecord
from engine.searchable_pdf import extracted_text
from tests.engine.docmakers import saved, text_page
from tests.web.test_documents_api import stored_document, stored_file
from web.services import Services


def squeezed(text: str) -> str:
    return "".join(text.split())


def pdf_of(client: FlaskClient, headers: dict[str, str], rec: ResultRecord) -> bytes:
    response = client.get(f"/api/v1/results/{rec.id}/pdf", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/pdf" and Path(rec.filename).stem in response.headers["Content-Disposition"]
    return response.data


def receipt() -> tuple[bytes, list[dict[str, Any]]]:
    """A PNG receipt and its lines, Chinese and English, as the engine reports them."""
    image = np.full((300, 800, 3), 255, np.uint8)
    lines = [("合计 12.50 元", 40, 60), ("Invoice No. 42", 40, 160), ("收款人：张三", 420, 160)]
    rows = []
    for text, x, y in lines:
        cv2.rectangle(image, (x, y), (x + 300, y + 50), (40, 40, 40), 2)
        box = [[x, y], [x + 300, y], [x + 300, y + 50], [x, y + 50]]
        rows.append({"text": text, "points": box, "confidence": 0.97, "source": "ocr"})
    ok, png = cv2.imencode(".png", image)
    assert ok
    return png.tobytes(), rows


def test_an_images_pdf_carries_its_text_chinese_included(client: FlaskClient, auth: dict, svc: Services) -> None:
    data, lines = receipt()
    text = "合计 12.50 元\nInvoice No. 42 收款人：张三"
    rec = stored_file(svc, "receipt.png", data, width=800, height=300, lines=lines, text=text)
    pdf = pdf_of(client, auth["bob"], rec)
    (page,) = extracted_text(pdf)
    assert squeezed(page) == squeezed(text)
    document = pdfium.PdfDocument(pdf)
    try:
        assert len(document) == 1
        shown = document[0].render(scale=96 / 72).to_numpy()  # the page at the image's own pixels
        assert shown.shape[:2] == (300, 800)
        assert shown[60, 40:340].mean() < 128 and shown[120, 500].mean() > 250  # the boxes drawn, no text painted
    finally:
        document.close()


def test_a_scanned_pages_text_is_laid_over_and_a_text_layer_kept(
    client: FlaskClient, auth: dict, svc: Services
) -> None:
    """mixed_pdf: page 1 born-digital (its own text layer, not written again), page 2 a scan (our
    text laid over it). Both pages keep their size; a correction is in the PDF."""
    rec = stored_document(svc)
    svc.store.correct(rec.id, 1, "Annual summary 2026", "bob", 3.0)
    pdf = pdf_of(client, auth["bob"], rec)
    first, second = extracted_text(pdf)
    assert squeezed(first) == squeezed("Quarterly report 2026 Invoice total: 1284.50")
    assert squeezed(second) == squeezed("Annual summary 2026")
    original = pdfium.PdfDocument(svc.settings.shared_dir / "finance" / "report.pdf")
    made = pdfium.PdfDocument(pdf)
    try:
        assert [p.get_size() for p in made] == [p.get_size() for p in original]
    finally:
        made.close()
        original.close()


def test_a_born_digital_pdf_comes_back_as_it_came(client: FlaskClient, auth: dict, svc: Services) -> None:
    document = pdfium.PdfDocument.new()
    text_page(document, [("Minutes of the board", 72, 100)])
    data = saved(document)
    line = {"text": "Minutes of the board", "points": [[200, 250], [700, 250], [700, 290], [200, 290]],
            "confidence": 1.0, "source": "pdf", "page": 1}  # fmt: skip
    pages = [{"page": 1, "width": 1653, "height": 2339, "rotation": 0}]
    rec = stored_file(
        svc, "minutes.pdf", data, width=1653, height=2339, lines=[line], text=line["text"], page_count=1, pages=pages
    )
    assert pdf_of(client, auth["bob"], rec) == data


def test_no_pdf_before_a_reading_nor_for_another_team(client: FlaskClient, auth: dict, svc: Services) -> None:
    data, _ = receipt()
    queued = stored_file(svc, "later.png", data)
    response = client.get(f"/api/v1/results/{queued.id}/pdf", headers=auth["bob"])
    assert response.status_code == 409 and "no reading yet" in response.get_json()["error"]
    rec = stored_document(svc)
    other = client.get(f"/api/v1/results/{rec.id}/pdf", headers=auth["carol"])  # team beta
    assert other.status_code == 404 and other.get_json()["error"] == "result not found"
    (svc.settings.shared_dir / "finance" / "report.pdf").write_bytes(b"%PDF-1.7 something else")
    assert client.get(f"/api/v1/results/{rec.id}/pdf", headers=auth["bob"]).status_code == 410
