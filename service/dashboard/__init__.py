"""The dashboard: HTML pages and their scripts, served by the app itself."""
