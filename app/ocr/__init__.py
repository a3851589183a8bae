"""OCR: image decoding, the RapidOCR engine, and the process pool that keeps it off the loop."""
