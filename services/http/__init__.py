"""The HTTP edge: the API of CONTRACT.md and the dashboard, served by uvicorn."""
