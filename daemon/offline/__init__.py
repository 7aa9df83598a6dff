"""Offline work, no service needed: batch OCR of files (`teamocr ocr`), corrections export, progress bars."""
