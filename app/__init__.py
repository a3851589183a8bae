"""ocrstream: OCR every image of tracked posts on Kafka and deliver matches per API key."""
