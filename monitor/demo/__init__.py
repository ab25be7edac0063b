"""The end-to-end demo on the bundled reference VLM, and the traffic it serves."""
