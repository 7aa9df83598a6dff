"""The teamocr service: command line, batch OCR and (in later issues) the folder-watching daemon."""
