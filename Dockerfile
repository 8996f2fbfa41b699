FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY worker ./worker
COPY migrations ./migrations
RUN pip install . && useradd --create-home initlab
USER initlab

EXPOSE 8000
CMD ["initlab", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
