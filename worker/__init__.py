"""Celery workers and the training engines behind them."""
