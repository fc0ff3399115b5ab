"""charclf serve: the HTTP API and web page over a loaded model."""
